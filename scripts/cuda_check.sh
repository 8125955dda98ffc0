#!/usr/bin/env bash
# Train and evaluate every method, fusion, loading mode, SMP suppression and augmentation kind once,
# briefly (tau 2+2), on the device given (default: cuda), on the tiny demo profile, in a scratch
# folder. CI has no GPU; run this on a machine that has one. Prints one OK/FAIL line per case;
# exits 1 if any failed.
#   bash scripts/cuda_check.sh            # on CUDA
#   bash scripts/cuda_check.sh cpu        # the same cases on the CPU
set -u
device=${1:-cuda}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d -t g2d-cuda-check-XXXXXX)
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python3}
cd "$work" || exit 1
cp "$root/params.yaml" params.yaml
printf 'tau1: 2\ntau2: 2\ndevice: %s\n' "$device" > device.yaml
g2d() { "$python" -m g2d.cli "$@"; }
base=(--params params.yaml --params "$root/config/presets/tiny.yaml" --params device.yaml)
echo "device $device, scratch $work"
g2d generate-demo "${base[@]}" --out data/raw/demo > prepare.log 2>&1 &&
  g2d preprocess "${base[@]}" --dataset demo >> prepare.log 2>&1 &&
  g2d train-teachers "${base[@]}" --dataset demo --seed 0 >> prepare.log 2>&1 &&
  g2d score "${base[@]}" --dataset demo --seed 0 >> prepare.log 2>&1 || { tail -20 prepare.log; exit 1; }
failed=0
check() {
  local name=$1; shift
  if g2d train-student "${base[@]}" "$@" --dataset demo --seed 0 > train.log 2>&1 &&
     g2d evaluate "${base[@]}" "$@" --dataset demo --seed 0 > eval.log 2>&1; then
    echo "OK   $name: $(tail -1 eval.log)"
  else
    echo "FAIL $name"; tail -15 train.log eval.log; failed=1
  fi
}
for method in joint g2d joint_smp umt umt_smp ogm_ge agm mmpareto mla ume dlmg pmr mses mslr reconboost; do check "$method" --method "$method"; done
for fusion in concat sum film gated cross_attention; do
  printf 'fusion: %s\n' "$fusion" > "fusion_$fusion.yaml"
  check "g2d, fusion $fusion" --params "fusion_$fusion.yaml" --method g2d
done
printf 'data: {loading: stream, workers: 2}\nteacher_cache: false\n' > stream.yaml
check "g2d, streamed through 2 DataLoader workers, online teachers" --params stream.yaml --method g2d
for suppression in freeze partial; do
  printf 'smp: {suppression: %s}\n' "$suppression" > "smp_$suppression.yaml"
  check "g2d, suppression $suppression" --params "smp_$suppression.yaml" --method g2d
done
# augmentation (last: it retrains the teachers and rescoring replaces the cache), streamed through workers
for kind in views online; do
  cache=$([ "$kind" = views ] && echo true || echo false)
  printf 'datasets: {demo: {augment: {kind: %s, views: 3}}}\nteacher_cache: %s\ndata: {loading: stream, workers: 2}\n' \
    "$kind" "$cache" > "augment_$kind.yaml"
  if g2d train-teachers "${base[@]}" --params "augment_$kind.yaml" --dataset demo --seed 0 > prepare.log 2>&1 &&
     g2d score "${base[@]}" --params "augment_$kind.yaml" --dataset demo --seed 0 >> prepare.log 2>&1; then
    check "g2d, augment $kind (teacher_cache: $cache), streamed through 2 DataLoader workers" \
      --params "augment_$kind.yaml" --method g2d
  else
    echo "FAIL augment $kind: teachers or scoring"; tail -15 prepare.log; failed=1
  fi
done
exit $failed
