#!/usr/bin/env bash
# Train and evaluate every method, fusion, loading mode, SMP suppression and augmentation kind once,
# briefly (tau 2+2), on the device given (default: cuda), on the tiny demo profile, through Snakemake
# in a scratch copy of the project: one run per case, the case's overrides as an overlay
# (--configfile), its stages forced to rerun (a loading mode changes no stage param, so alone it
# would rerun nothing). CI has no GPU; run this on a machine that has one. Prints one OK/FAIL line
# per case; exits 1 if any failed. Each job's output is in the scratch folder's logs/.
#   bash scripts/cuda_check.sh            # on CUDA
#   bash scripts/cuda_check.sh cpu        # the same cases on the CPU
set -u
device=${1:-cuda}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d -t g2d-cuda-check-XXXXXX)
python=${PYTHON:-python3}
# the copy's own code runs (the stages depend on it); snakemake and g2d from the interpreter's bin/
export PYTHONPATH="$work/src${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$("$python" -c 'import os, sys; print(os.path.dirname(sys.executable))'):$PATH"
"$python" -c 'import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1] + "/src")
from g2d.pipeline import copy_project; copy_project(Path(sys.argv[1]), Path(sys.argv[2]))' "$root" "$work" || exit 1
cd "$work" || exit 1
printf 'tau1: 2\ntau2: 2\ndevice: %s\n' "$device" > device.yaml
smk() { "$python" -m snakemake --cores 2 --configfile config/presets/tiny.yaml device.yaml "$@"; }
echo "device $device, scratch $work"
smk -- runs/demo/seed0/scores.h5 > prepare.log 2>&1 || { tail -30 prepare.log; exit 1; }
failed=0
# check NAME OVERLAY_YAML [RULE...]: train and evaluate G2D (or the overlay's method) under the overlay,
# rerunning the rules named (default: the student's)
check() {
  local name=$1 method; shift
  printf '%s\n' "$1" > case.yaml; shift
  method=$("$python" -c 'import sys, yaml; print((yaml.safe_load(open("case.yaml")) or {}).get("methods", ["g2d"])[0])')
  if smk case.yaml --forcerun "${@:-train_student}" evaluate -- "runs/demo/seed0/$method/metrics.json" > case.log 2>&1; then
    echo "OK   $name: $(tail -1 "logs/evaluate/demo-0-$method.log")"
  else
    echo "FAIL $name"; tail -30 case.log; failed=1
  fi
}
for method in joint g2d joint_smp umt umt_smp ogm_ge agm mmpareto mla ume dlmg pmr mses mslr reconboost; do check "$method" "methods: [$method]"; done
for fusion in concat sum film gated cross_attention; do check "g2d, fusion $fusion" "fusion: $fusion"; done
check "g2d, streamed through 2 DataLoader workers, online teachers" \
  "{data: {loading: stream, workers: 2}, teacher_cache: false}"
for suppression in freeze partial; do check "g2d, suppression $suppression" "smp: {suppression: $suppression}"; done
# augmentation (last: it retrains the teachers and rescores), streamed through workers
for kind in views online; do
  cache=$([ "$kind" = views ] && echo true || echo false)
  check "g2d, augment $kind (teacher_cache: $cache), streamed through 2 DataLoader workers" \
    "{datasets: {demo: {augment: {kind: $kind, views: 3}}}, teacher_cache: $cache, data: {loading: stream, workers: 2}}" \
    train_teachers score train_student
done
exit $failed
