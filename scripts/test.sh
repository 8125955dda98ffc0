#!/usr/bin/env bash
# Install (once) and run the test suite, end-to-end Snakemake and DVC runs included.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
source "$(dirname "$0")/bootstrap.sh"
python -m pytest -q "$@"
