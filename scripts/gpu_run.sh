#!/usr/bin/env bash
# One prepared run for a lent CUDA machine (see README, "Results" and "Speed"): every task at full
# size and the benchmark, with everything that comes back packed into $OUT (at most a few
# files). Finishes in a few minutes on an H100; each step is independent, so a failure in one
# does not lose the others.
#
#   bash scripts/gpu_run.sh            # DATA defaults to .device-data/cifar10-jpeg.tar.gz
#
# From a session with a lent GPU: first, here, `mkdir -p .device-data && cp
# ../shared/data/cifar10-jpeg.tar.gz .device-data/` (ignored by git), then one device call with
# carry [".device-data"] and the command `bash scripts/gpu_run.sh` ($OUT is set there), and
# commit the numbers it brings back (results.tgz, run.log, device.txt) with device and date.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_results}
DATA=${DATA:-.device-data/cifar10-jpeg.tar.gz}
RUN=$OUT/run
mkdir -p "$RUN"
export PYTHONUNBUFFERED=1 CIFAR10_CACHE_DIR=${CIFAR10_CACHE_DIR:-/tmp/cifar10-cache}
PY=${PY:-python3}
log() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$OUT/run.log"; }

{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv;
  $PY -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"; } \
  > "$OUT/device.txt" 2>&1

# ResNet18 ImageNet weights: torchvision's file name, in any torch/hub cache on the machine.
WEIGHTS=${WEIGHTS:-$(find / -xdev -name 'resnet18-f37072fd.pth' 2>/dev/null | head -1)}
log "weights: ${WEIGHTS:-none found}"

# Task 3 first: it is the one part a CPU cannot do, so it must not wait behind the others if
# the device call runs out of time (whatever is under $OUT by then still comes back).
if [ -n "$WEIGHTS" ]; then
  log "task 3"
  $PY task3_resnet.py --data-dir "$DATA" --weights "$WEIGHTS" --no-progress --output-dir "$RUN" >> "$OUT/run.log" 2>&1
  $PY task3_visualisation.py --data-dir "$DATA" --weights "$WEIGHTS" --output-dir "$RUN" >> "$OUT/run.log" 2>&1
else
  log "task 3 skipped: no resnet18-f37072fd.pth on this machine"
fi
log "benchmark"; $PY benchmark.py --json "$RUN/benchmark.json" 2>&1 | tee -a "$OUT/run.log"
log "task 2";    $PY task2_models.py --data-dir "$DATA" --no-progress --output-dir "$RUN" >> "$OUT/run.log" 2>&1
# 3d (Model 2.1 beside ResNet18) needs Model 2.1's history, which exists only now.
[ -n "$WEIGHTS" ] && $PY task3_resnet.py --plot-only --output-dir "$RUN" >> "$OUT/run.log" 2>&1
log "task 1";    $PY task1_lenet.py --data-dir "$DATA" --no-progress --output-dir "$RUN" >> "$OUT/run.log" 2>&1
log "report";    $PY report.py --output-dir "$RUN" >> "$OUT/run.log" 2>&1
# Everything but the checkpoints, in one archive (the device tool brings back few files).
tar czf "$OUT/results.tgz" --exclude='*.pt' -C "$OUT" run && rm -rf "$RUN"
log "done"
