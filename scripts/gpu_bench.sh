#!/usr/bin/env bash
# One-shot measurement on a GPU machine, written into one folder:
#   the adapter, parity with the CPU (greedy text and validation loss), `bench` of small and base
#   (training tokens/s, denoising ms, generation characters/s), the PyTorch twin on the same GPU
#   where torch sees one, and optionally `base` trained on the GPU for a fixed wall time.
#
# Usage, from the repository root:   scripts/gpu_bench.sh OUT_DIR
#   TINY_DIFFUSION_BIN  the program; a `.xz` is unpacked first        [target/dist/tiny-diffusion]
#   DEVICE              wgpu or cuda; the other is tried if it fails a 4-character generate   [wgpu]
#   PHASES              any of: parity bench twin train, in that order   [parity bench twin]
#   RUNS                timed runs per bench case                        [5]
#   TRAIN_SECONDS       wall time of the `train` phase (`train --time`)  [240]
#   PHASE_TIMEOUT       seconds any other phase may take                 [180]
#
# OUT_DIR gets at most eight files (what the device tool here brings back): gpu_bench.json,
# rewritten after every phase so that a run cut short still reports what it finished;
# gpu_bench.log, every command's stderr (the training run's progress too); after `train`, the
# checkpoint's train-config.json and its weights as model.safetensors.part-aa, -ab, … of 15 MiB
# (`cat` them back into model.safetensors).
#
# Building for it (this workplace's machines reach no network, so no `cuda` feature: its build
# script downloads LLVM; the device's CUDA is reached through PyTorch's twin alone):
#   cargo build --profile dist --no-default-features --features wgpu,avx512   # 29 min cold, 61.9 MiB
#   xz -T2 -6 -k target/dist/tiny-diffusion                                   # 13.4 MiB
# The tree that travels with a device call is limited to 64 MiB and the tracked files are 47 MiB
# (the three shipped checkpoints 43 MB), so carry the `.xz`, not the binary: 60.7 MiB with .gl/.
# Where the GPU machine has no Vulkan loader (`ldconfig -p | grep libvulkan` empty), carry the
# Debian packages in .gl/ as the device tool's README says; this script unpacks them. So:
#   TINY_DIFFUSION_BIN=target/dist/tiny-diffusion.xz scripts/gpu_bench.sh "$OUT"
#   (carry: .gl, target/dist/tiny-diffusion.xz; then PHASES=train in a second call)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: scripts/gpu_bench.sh OUT_DIR}
BIN=${TINY_DIFFUSION_BIN:-target/dist/tiny-diffusion}
DEVICE=${DEVICE:-wgpu}
PHASES=${PHASES:-parity bench twin}
RUNS=${RUNS:-5}
TRAIN_SECONDS=${TRAIN_SECONDS:-240}
PHASE_TIMEOUT=${PHASE_TIMEOUT:-180}
mkdir -p "$OUT"
LOG="$OUT/gpu_bench.log"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
: > "$LOG"

say() { echo "[gpu_bench $(date +%T)] $*" | tee -a "$LOG" >&2; }

# `phase NAME SECONDS CMD...`: CMD under a timeout, stdout to $WORK/NAME.out, stderr to the log;
# its exit status and seconds to $WORK/NAME.rc and NAME.secs (124: timed out).
phase() {
  local name=$1 limit=$2 start=$SECONDS
  shift 2
  echo "--- $name: $*" >> "$LOG"
  timeout --kill-after=10 "$limit" "$@" > "$WORK/$name.out" 2>> "$LOG"
  echo $? > "$WORK/$name.rc"
  echo $((SECONDS - start)) > "$WORK/$name.secs"
}

# The report, from whatever $WORK holds so far.
report() {
  python3 - "$WORK" "$DEVICE" "$OUT/gpu_bench.json" <<'EOF'
import glob, json, os, sys
work, device, out = sys.argv[1:]
def read(name, default=""):
    path = os.path.join(work, name)
    return open(path).read() if os.path.exists(path) else default
def rows(name):
    return [json.loads(l) for l in read(name + ".out").splitlines() if l.startswith("{")]
def parsed(name):
    try:
        return json.loads(read(name + ".out"))
    except ValueError:
        return None
names = sorted(os.path.basename(p)[:-len(".rc")] for p in glob.glob(os.path.join(work, "*.rc")))
phases = {n: {"rc": int(read(n + ".rc")), "seconds": int(read(n + ".secs"))} for n in names}
text = {d: read(f"generate-{d}.out") for d in ("flex", device)}
report = {
    "device": device,
    "adapter": read("adapter.txt").strip(),
    "phases": phases,
    "parity": {
        "greedy_text_equal": bool(text[device]) and text["flex"] == text[device],
        "text": text,
        "eval": {d: parsed(f"eval-{d}") for d in ("flex", device)},
    },
    "bench": rows("bench"),
    "twin": rows("twin"),
    "twin_compiled": rows("twin-compiled"),
}
json.dump(report, open(out, "w"), indent=1)
EOF
}

case "$BIN" in
  *.xz)
    say "unpacking $BIN"
    python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$BIN" "$WORK/tiny-diffusion"
    chmod +x "$WORK/tiny-diffusion"
    BIN=$WORK/tiny-diffusion ;;
esac

# A Vulkan loader carried as Debian packages, and NVIDIA's Vulkan driver where the container
# mounts it outside the loader's search path.
if ! ldconfig -p | grep libvulkan > /dev/null && compgen -G ".gl/*.deb" > /dev/null; then
  say "unpacking the carried Vulkan loader"
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nvidia_icd" ]; then
  export VK_DRIVER_FILES=$nvidia_icd
fi
# CUDA's toolkit (headers for CubeCL, libnvrtc for cudarc) where nvcc is.
if [ -z "${CUDA_PATH:-}" ] && command -v nvcc > /dev/null; then
  export CUDA_PATH=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
fi
if [ -n "${CUDA_PATH:-}" ]; then
  export LD_LIBRARY_PATH=$CUDA_PATH/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi

say "adapter"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
  vulkaninfo --summary 2>/dev/null | grep -E "deviceName|driverName" || true
  "$BIN" --version; } > "$WORK/adapter.txt"

say "probing --device $DEVICE"
phase "probe-$DEVICE" 120 "$BIN" generate --device "$DEVICE" --temperature 0 --length 4 --seed 1
if [ "$(cat "$WORK/probe-$DEVICE.rc")" != 0 ]; then
  other=$([ "$DEVICE" = cuda ] && echo wgpu || echo cuda)
  say "--device $DEVICE failed (see the log); trying --device $other"
  phase "probe-$other" 120 "$BIN" generate --device "$other" --temperature 0 --length 4 --seed 1
  [ "$(cat "$WORK/probe-$other.rc")" = 0 ] && DEVICE=$other
fi
report

for p in $PHASES; do
  case $p in
    parity)
      say "parity: greedy text and validation loss, flex against $DEVICE"
      for d in $(printf '%s\n' flex "$DEVICE" | uniq); do
        phase "generate-$d" "$PHASE_TIMEOUT" "$BIN" generate --device "$d" --temperature 0 --length 200 --seed 1
        phase "eval-$d" "$PHASE_TIMEOUT" "$BIN" eval --device "$d" --json
      done ;;
    bench)
      say "bench on $DEVICE (small, base)"
      phase bench "$PHASE_TIMEOUT" "$BIN" bench --device "$DEVICE" --json --runs "$RUNS" --preset small --preset base --batch 8 --batch 64 ;;
    twin)
      if python3 -c "import torch; assert torch.cuda.is_available()" 2>> "$LOG"; then
        say "the PyTorch twin on cuda (eager, then torch.compile)"
        phase twin "$PHASE_TIMEOUT" python3 bench/pytorch_reference.py --json --device cuda --runs "$RUNS" --preset small base --batch 8 64
        phase twin-compiled "$PHASE_TIMEOUT" python3 bench/pytorch_reference.py --json --device cuda --runs "$RUNS" --preset small base --batch 8 64 --compile
      else
        say "no CUDA torch here: no twin"
      fi ;;
    train)
      # The shipped recipe's rates (docs/training.md, long-5) on the `base` preset, the learning
      # rate decaying with the clock.
      say "training base on $DEVICE for $TRAIN_SECONDS s"
      phase train $((TRAIN_SECONDS + 120)) \
        "$BIN" train --device "$DEVICE" --preset base --time "$TRAIN_SECONDS" --batch 16 --seq-len 256 --lr 3e-3 \
        --muon-lr 0.02 --warmup 200 --min-lr-ratio 0 --eval-every 500 --sample-every 0 --save-every 500 --seed 0 --out "$WORK/base-gpu"
      if [ -f "$WORK/base-gpu/model.safetensors" ]; then
        cp "$WORK/base-gpu/config.json" "$OUT/train-config.json"
        split -b 15M "$WORK/base-gpu/model.safetensors" "$OUT/model.safetensors.part-"
      fi ;;
    *) say "unknown phase $p" ;;
  esac
  report
done
say "wrote $OUT/gpu_bench.json (device $DEVICE)"
