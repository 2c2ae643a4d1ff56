#!/usr/bin/env bash
# One call on a lent GPU machine (issue 12, item 4), sized for its 10-minute limit. Parts (default: all):
#   cuda_check  CPU = CUDA: every strategy trained alike on both, in float64 (python -m benchmarks.cuda_check)
#   e2e         Split-CIFAR100-shaped runs end to end through `python -m phn run` (random pixels at the real
#               size: benchmarks/synthetic_cifar.py), HN-4 for 2 epochs, HN-2 and HN-F for 1; per-experience
#               times in e2e.csv (benchmarks/e2e_times.py)
#   speed       the speed benchmark on the GPU (batch 64, bf16 autocast; no per-configuration memory children)
#   compile     the torch.compile trial for HN-4 (phn's generated part and the ceiling)
# Every part has its own time limit; results are packed into $OUT/gpu.tgz after each.
# Usage (device tool): bash benchmarks/gpu_session.sh [PART ...]
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-runs/gpu-out}
WORK=/tmp/gpu
PARTS=${*:-cuda_check e2e speed compile}
mkdir -p "$OUT" "$WORK"
pack() { tar czf "$OUT/gpu.tgz" --exclude="*.pt" -C /tmp gpu 2>/dev/null; }
step() {  # step NAME SECONDS CMD...: run with a limit, log to $WORK/NAME.log
    local name=$1 limit=$2; shift 2
    echo "=== $name (limit ${limit}s) $(date +%T)"
    local tic=$SECONDS
    timeout "$limit" "$@" >"$WORK/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$WORK/$name.log"
    echo "=== $name: exit $rc after $((SECONDS - tic)) s"
    pack
}
has() { [[ " $PARTS " == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$WORK/gpu.txt"
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)" \
    | tee -a "$WORK/gpu.txt"
if has cuda_check; then step cuda_check 45 python3 -m benchmarks.cuda_check; fi
if has e2e; then
    step data 40 python3 -m benchmarks.synthetic_cifar /tmp/phn-data
    for spec in "4 2 75" "2 1 70" "0 1 100"; do
        set -- $spec
        step "e2e_hn$1" "$3" python3 -m phn run --stream split-cifar100 --data-root /tmp/phn-data \
            --no-verify-checksums --strategy hn --freeze-depth "$1" --epochs "$2" --device cuda --no-progress \
            --out "$WORK/e2e_hn$1"
    done
    python3 -m benchmarks.e2e_times "$WORK/e2e.csv" "$WORK"/e2e_hn4 "$WORK"/e2e_hn2 "$WORK"/e2e_hn0
fi
if has speed; then
    step speed 250 python3 -m benchmarks.speed --device cuda --amp --threads 8 --no-memory --batches 64 \
        --steps 10 --reps 3 --warmup 3 --out "$WORK/speed"
fi
if has compile; then
    step compile 130 python3 -m benchmarks.speed --device cuda --amp --threads 8 --sections compile --models 4 \
        --batches 64 --steps 10 --reps 3 --warmup 3 --out "$WORK/compile"
fi
pack
ls -la "$OUT"
