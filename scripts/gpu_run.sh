#!/usr/bin/env bash
# The prepared run for a lent CUDA machine, one call, about 8 minutes: the CUDA tests of the
# graphed step, the benchmark with the eager and the graphed step, and the whole assignment
# with `python run_all.py` on the full data (graphed; again eager if the graphed run fails),
# then the rest of the test suite. Everything that comes back is packed into $OUT (a few
# files); each step has its own time cap, so one failure does not lose the others.
#
#   bash scripts/gpu_run.sh            # DATA defaults to .device-data/cifar10-jpeg.tar.gz
#
# Before the device call, here: `mkdir -p .device-data && cp PATH/cifar10-jpeg.tar.gz
# .device-data/` (ignored by git); then one device call with carry [".device-data"] and the
# command `bash scripts/gpu_run.sh` ($OUT is set there). Commit what comes back under
# results/<gpu>-<date>/ (run JSONs, benchmark JSONs, run.log, device.txt), never checkpoints.
# Try it on a CPU first, on tiny data:
#   GRAPHS=off EXTRA="--subset 300 --epochs 1" BENCH="--models lenet --steps 2" TESTS=0 \
#     DATA=PATH OUT=/tmp/gpu-try bash scripts/gpu_run.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_results}
DATA=${DATA:-.device-data/cifar10-jpeg.tar.gz}
GRAPHS=${GRAPHS:-on}        # --cuda-graphs of run_all (off: to try this script on a CPU)
EXTRA=${EXTRA:-}            # extra run_all flags (a quick try: --subset 300 --epochs 1)
BENCH=${BENCH:-}            # extra benchmark flags (a quick try: --models lenet --steps 2)
TESTS=${TESTS:-1}           # 0: skip the test suite (a quick try)
PY=${PY:-python3}
RUN=$OUT/run
mkdir -p "$RUN"
export PYTHONUNBUFFERED=1 CIFAR10_CACHE_DIR=${CIFAR10_CACHE_DIR:-/tmp/cifar10-cache}
LOG=$OUT/run.log
log() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$LOG"; }
step() {  # step CAP_SECONDS NAME COMMAND...: run under a time cap, log its status and time
  local cap=$1 name=$2; shift 2
  log "$name: $*"
  local start=$SECONDS
  timeout "$cap" "$@" >> "$LOG" 2>&1
  local rc=$?
  log "$name: rc=$rc in $((SECONDS - start)) s"
  return $rc
}

{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1;
  $PY -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision',
torchvision.__version__, 'cuda', torch.cuda.is_available())"; nproc; } > "$OUT/device.txt" 2>&1
cat "$OUT/device.txt" >> "$LOG"

# ResNet18 ImageNet weights: torchvision's file name, in any torch hub cache on the machine.
WEIGHTS=${WEIGHTS:-$(find / -xdev -name 'resnet18-f37072fd.pth' 2>/dev/null | head -1)}
log "weights: ${WEIGHTS:-none found}"

[ "$TESTS" = 1 ] && step 90 "cuda tests" $PY -m pytest -q -p no:cacheprovider tests/test_steps.py
step 60 "benchmark eager" $PY benchmark.py --cuda-graphs off --json "$RUN/benchmark_eager.json" $BENCH
step 60 "benchmark graphed" $PY benchmark.py --cuda-graphs on --json "$RUN/benchmark_graphed.json" $BENCH

# The whole assignment, timed; with the weights, Task 3 and its figures too.
W=(); [ -n "$WEIGHTS" ] && W=(--weights "$WEIGHTS")
if ! step 300 "run_all" $PY run_all.py --data-dir "$DATA" --cuda-graphs "$GRAPHS" \
      --no-progress --output-dir "$RUN/all" "${W[@]}" $EXTRA; then
  step 240 "run_all eager" $PY run_all.py --data-dir "$DATA" --cuda-graphs off \
      --no-progress --output-dir "$RUN/all-eager" "${W[@]}" $EXTRA
fi

# The rest of the suite with CUDA present (its CPU half is what CI runs).
XDIST=(); $PY -c "import xdist" 2>/dev/null && XDIST=(-n 8)
[ "$TESTS" = 1 ] && step 100 "tests" $PY -m pytest -q -p no:cacheprovider "${XDIST[@]}" --ignore=tests/test_steps.py

# Everything but checkpoints and the data cache, in one archive.
tar czf "$OUT/results.tgz" --exclude='*.pt' -C "$OUT" run && rm -rf "$RUN"
log "done"
