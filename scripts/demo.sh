#!/usr/bin/env bash
# Install (once) and run the whole G2D pipeline on the embedded demo data with Snakemake.
# Extra arguments go to snakemake, e.g. `bash scripts/demo.sh --cores 8`.
source "$(dirname "$0")/bootstrap.sh"
snakemake --cores 2 "$@"
echo "==> done: open reports/report.md (figures in reports/figures/)"
