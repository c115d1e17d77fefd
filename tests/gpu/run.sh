#!/usr/bin/env bash
# Everything the GPU machine is needed for, as one prepared run (a drawn task
# has 15 minutes of device time in all; this stays within BUDGET_SECONDS, 570):
#   - `dsan predict` of a bundled sample on LibTorch's CUDA (cuDNN), Burn's
#     CUDA and wgpu/Vulkan against the
#     CPU (same seeded web-default model): the CUDA run of the pipeline, and the
#     web config's forward on a real GPU through wgpu (the proxy for WebGPU);
#   - whether a training step finishes on LibTorch's CUDA, then Burn's CUDA
#     (Burn 0.21's first CUDA training step was seen to compile for over 220 s,
#     ../shared/PLATFORM.md), then wgpu/Vulkan; the run trains on the first
#     that does;
#   - phantoms -> `dsan train` of the web config -> `dsan eval` on held-out
#     phantoms -> `dsan export --default`: the page's default model;
#   - throughput, peak GPU memory, and the same branch's training step in
#     PyTorch (tests/gpu/torch_step.py) as the reference.
#
# Prepare here (x86-64, see README "GPU machine"). LibTorch must be the GPU
# machine's own PyTorch 2.11 (CUDA 13.0): build against that wheel's headers
# and libraries (tch 0.22 expects 2.9.0; against 2.11.0 it builds and runs
# with the version check bypassed), and at run time this script points the
# binary at the machine's torch/lib:
#   python3 -m pip download --no-deps --only-binary=:all: torch==2.11.0 -d .torch211
#   (cd .torch211 && unzip -q torch-2.11.0-*.whl 'torch/include/*' 'torch/lib/*')
#   LIBTORCH=$PWD/.torch211/torch LIBTORCH_BYPASS_VERSION_CHECK=1 CUDARC_CUDA_VERSION=13000 \
#     cargo build --release --locked -p dsan-train --features cuda,wgpu,libtorch
#   mkdir -p .gpu && strip -o .gpu/dsan target/release/dsan && gzip -f .gpu/dsan
#   (without libtorch: 11.5 min on 2 cores from scratch, 7.5 min after a
#   dependency change; 66 MB, 53 MB stripped, 14.3 MB gzipped)
#   plus the Vulkan loader debs in .gl/ (the device tool's README); both folders
#   in .git/info/exclude. Then, on the device: carry [".gpu", ".gl"], command
#   `bash tests/gpu/run.sh`, timeout_s 600.
# Results in $OUT: summary.json (the figures), run.log (every step's output),
# model-weights.tar (the exported default model with models.json, the eval
# metrics and the training log), to unpack into model-weights/ here.
#
# The same script runs on a CPU for a dry run of its plumbing:
#   DSAN=target/debug/dsan OUT=/tmp/gpu-out BACKENDS=cpu TRAIN_BACKENDS=cpu \
#   PRESET=tiny N_TRAIN=8 N_HELD=4 SLICES=40 SIZE=96 EPOCHS=1 bash tests/gpu/run.sh
set -uo pipefail

OUT=${OUT:?the results folder}
WORK=${WORK:-/tmp/dsan-gpu}
BACKENDS=${BACKENDS:-cpu libtorch-cuda cuda wgpu}
TRAIN_BACKENDS=${TRAIN_BACKENDS:-libtorch-cuda cuda wgpu}
PRESET=${PRESET:-web-default}
N_TRAIN=${N_TRAIN:-160}
N_HELD=${N_HELD:-40}
SLICES=${SLICES:-100}
SIZE=${SIZE:-256}
EPOCHS=${EPOCHS:-12}
BATCH=${BATCH:-4}
PROBE_SECONDS=${PROBE_SECONDS:-120}
TRAIN_SECONDS=${TRAIN_SECONDS:-240}
# The device tool's limit is 600 s a call: training gets what is left of
# BUDGET_SECONDS once the steps after it (about RESERVE_SECONDS) are set aside.
BUDGET_SECONDS=${BUDGET_SECONDS:-570}
RESERVE_SECONDS=${RESERVE_SECONDS:-110}
SAMPLE=public/samples/covid-19-like-1.zip

mkdir -p "$OUT" "$WORK"
exec > >(tee "$OUT/run.log") 2>&1

if [ -z "${DSAN:-}" ]; then
    DSAN=$WORK/dsan
    gunzip -c .gpu/dsan.gz > "$DSAN" && chmod +x "$DSAN" || { echo "no .gpu/dsan.gz"; exit 2; }
fi
for f in .gl/*.deb; do [ -e "$f" ] && dpkg -x "$f" /; done
ldconfig 2>/dev/null
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/lib64:/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# A `libtorch` build loads the machine's own libtorch (its CUDA libraries
# through the wheel's own rpaths).
torch_lib=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null) \
    && export LD_LIBRARY_PATH=$torch_lib:$LD_LIBRARY_PATH
export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda-13.0}
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export CUBECL_AUTOTUNE_LEVEL=${CUBECL_AUTOTUNE_LEVEL:-minimal}
# Compiled kernels (dsan's kernel_cache.rs): empty for the first probe, warm for the second.
export DSAN_KERNEL_CACHE=$WORK/kernels

step() { echo "== $(date +%T) $*"; }

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
nproc

step "predict $SAMPLE on: $BACKENDS"
for backend in $BACKENDS; do
    timeout "$PROBE_SECONDS" "$DSAN" predict "$SAMPLE" --backend "$backend" \
        > "$WORK/predict-$backend.json" 2> "$WORK/predict-$backend.err" \
        || echo "predict on $backend failed: $(tail -n 3 "$WORK/predict-$backend.err")"
done

step "phantoms: $N_TRAIN to train, $N_HELD held out"
"$DSAN" phantoms --out "$WORK/train" --n "$N_TRAIN" --seed 1 --slices "$SLICES" --size "$SIZE" >/dev/null
"$DSAN" phantoms --out "$WORK/held" --n "$N_HELD" --seed 2 --slices "$SLICES" --size "$SIZE" >/dev/null
"$DSAN" phantoms --out "$WORK/probe-data" --n 6 --seed 3 --slices "$SLICES" --size "$SIZE" >/dev/null

# Memory in use on the GPU every half second, while training runs.
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$WORK/memory.csv" 2>/dev/null &
monitor=$!

# One training epoch on the 6 probe cases; its wall time (ms) in $WORK/probe-<name>.ms.
probe() {
    local backend=$1 name=$2 start
    rm -rf "$WORK/probe"
    start=$(date +%s%N)
    timeout "$PROBE_SECONDS" "$DSAN" train --backend "$backend" --data "$WORK/probe-data" \
        --preset "$PRESET" --epochs 1 --batch-size 2 --out "$WORK/probe" 2>&1 | tail -n 3
    [ -s "$WORK/probe/log.jsonl" ] || return 1
    echo $(( ($(date +%s%N) - start) / 1000000 )) > "$WORK/probe-$name.ms"
    cp "$WORK/probe/log.jsonl" "$WORK/probe-$name.jsonl"
}

train_backend=
for backend in $TRAIN_BACKENDS; do
    step "one training epoch on 6 cases, $backend, kernels not yet compiled, at most $PROBE_SECONDS s"
    rm -rf "$DSAN_KERNEL_CACHE"
    if probe "$backend" "$backend"; then
        train_backend=$backend
        step "the same epoch again, $backend, kernels from the cache"
        probe "$backend" "$backend-warm" || echo "the warm epoch on $backend did not finish"
        du -sh "$DSAN_KERNEL_CACHE" 2>/dev/null
        break
    fi
    echo "training on $backend did not finish an epoch"
done
[ -n "$train_backend" ] || { kill "$monitor"; echo "no backend trained"; exit 1; }

left=$((BUDGET_SECONDS - RESERVE_SECONDS - SECONDS))
[ "$left" -lt "$TRAIN_SECONDS" ] && TRAIN_SECONDS=$left
[ "$TRAIN_SECONDS" -gt 30 ] || { kill "$monitor"; echo "no time left to train"; exit 1; }
step "train $PRESET on $train_backend: $EPOCHS epochs at most, $TRAIN_SECONDS s at most"
# An epoch cut short by the time limit is lost; the best finished one is exported.
timeout "$TRAIN_SECONDS" "$DSAN" train --backend "$train_backend" --data "$WORK/train" \
    --preset "$PRESET" --epochs "$EPOCHS" --batch-size "$BATCH" --out "$WORK/run"
kill "$monitor" 2>/dev/null

step "evaluate on the held-out phantoms, export as the page's default"
card=$("$DSAN" export --run "$WORK/run" --out "$WORK/first" --name "DSAN-CT web (phantoms)" --synthetic) || exit 1
"$DSAN" eval --backend "$train_backend" --weights "$card" --data "$WORK/held" --out "$WORK/eval" || exit 1
rm -rf "$WORK/model-weights"
"$DSAN" export --run "$WORK/run" --out "$WORK/model-weights" --name "DSAN-CT web (phantoms)" \
    --synthetic --metrics "$WORK/eval/metrics.json" --default > /dev/null || exit 1
cp "$WORK/run/log.jsonl" "$WORK/model-weights/train-log.jsonl"
cp "$WORK/eval/metrics.json" "$WORK/model-weights/eval-metrics.json"
tar -C "$WORK" -cf "$OUT/model-weights.tar" model-weights

step "PyTorch: the same branch's training step"
read -r depth rows columns < <(python3 -c "import json,sys; print(*json.load(open(sys.argv[1]))['architecture']['input'])" "$card")
width=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['architecture']['base_width'])" "$card")
timeout $((BUDGET_SECONDS - SECONDS > 20 ? BUDGET_SECONDS - SECONDS - 10 : 10)) python3 tests/gpu/torch_step.py --input "$depth" "$rows" "$columns" --width "$width" \
    --batch "$BATCH" --steps 30 > "$WORK/torch.json" || echo "PyTorch reference failed"

step "summary"
python3 - "$WORK" "$train_backend" "$BATCH" "$BACKENDS" > "$OUT/summary.json" <<'PY'
import json, pathlib, sys
work, backend, batch, backends = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4].split()

def load(path):
    try:
        text = path.read_text().strip()
        return json.loads(text) if text.startswith(("{", "[")) else None
    except (OSError, ValueError):
        return None

def lines(path):
    try:
        return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    except (OSError, ValueError):
        return []

summary = {"train_backend": backend, "predict": {}}
cpu = load(work / "predict-cpu.json")
for b in backends:
    p = load(work / f"predict-{b}.json")
    if not p:
        summary["predict"][b] = None
        continue
    d = p["diagnosis"]
    entry = {"probabilities": d["probabilities"], "timings_ms": {t["stage"]: t["ms"] for t in d["timings"]}}
    if cpu and b != "cpu":
        entry["max_abs_diff_vs_cpu"] = max(abs(x - y) for x, y in zip(d["probabilities"], cpu["diagnosis"]["probabilities"]))
    summary["predict"][b] = entry
log = lines(work / "run" / "log.jsonl")
summary["epochs"] = log
if log:
    best = max(e["cases_per_second"] for e in log[1:] or log)
    summary["burn_cases_per_second"] = best
    summary["burn_ms_per_branch_step"] = 1000.0 * batch / best
    summary["epoch_seconds"] = [e["train_seconds"] for e in log]
summary["probe_first_epoch"] = {p.stem: lines(p) for p in work.glob("probe-*.jsonl")}
summary["probe_wall_seconds"] = {p.stem: int(p.read_text()) / 1000 for p in work.glob("probe-*.ms")}
torch = load(work / "torch.json")
summary["torch"] = torch
if torch and log:
    summary["burn_over_torch_step"] = summary["burn_ms_per_branch_step"] / torch["ms_per_step"]
try:
    memory = [int(v) for v in (work / "memory.csv").read_text().split() if v.isdigit()]
    summary["peak_gpu_memory_mib"] = max(memory) if memory else None
except OSError:
    summary["peak_gpu_memory_mib"] = None
metrics = load(work / "eval" / "metrics.json")
summary["held_out"] = metrics.get("evaluation") if metrics else None
print(json.dumps(summary, indent=1))
PY
cat "$OUT/summary.json" | head -c 3000
