#!/usr/bin/env bash
# One-shot measurement on a GPU machine, written as one JSON file:
#   the adapter, parity with the CPU (greedy text and validation loss), `bench` of small and base
#   (training tokens/s, denoising ms, generation characters/s) and, where torch imports, the
#   PyTorch twin on the same GPU.
#
# Build where cargo is, carry the binary (and this repository's bench/ and scripts/) to the GPU
# machine, and run from the repository root:
#   cargo build --profile dist --no-default-features --features wgpu,cuda,avx512     (62 MiB with wgpu alone)
#   TINY_DIFFUSION_BIN=target/dist/tiny-diffusion DEVICE=cuda scripts/gpu_bench.sh gpu_bench.json
# (DEVICE=wgpu for Vulkan, Metal, DX12; the checkpoints are read from checkpoints/ beside it.)
# RUNS (default 5) sets the timed runs per bench case.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${TINY_DIFFUSION_BIN:-target/release/tiny-diffusion}
DEVICE=${DEVICE:-cuda}
RUNS=${RUNS:-5}
OUT=${1:-gpu_bench.json}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

say() { echo "[gpu_bench] $*" >&2; }

say "adapter"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
  vulkaninfo --summary 2>/dev/null | grep -E "deviceName|driverName" || true; } > "$WORK/adapter.txt"

say "parity: greedy text and validation loss, flex against $DEVICE"
for d in flex "$DEVICE"; do
  "$BIN" generate --device "$d" --temperature 0 --length 200 --seed 1 > "$WORK/text-$d.txt" 2> "$WORK/generate-$d.log"
  echo $? > "$WORK/generate-$d.rc"
  "$BIN" eval --device "$d" --json > "$WORK/eval-$d.json" 2> "$WORK/eval-$d.log"
done

say "bench on $DEVICE (small, base)"
"$BIN" bench --device "$DEVICE" --json --runs "$RUNS" --preset small --preset base --batch 8 --batch 64 \
  > "$WORK/bench.jsonl" 2> "$WORK/bench.log"

if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  say "the PyTorch twin on cuda (eager, then torch.compile)"
  python3 bench/pytorch_reference.py --json --device cuda --runs "$RUNS" --preset small base --batch 8 64 > "$WORK/twin.jsonl" 2> "$WORK/twin.log"
  python3 bench/pytorch_reference.py --json --device cuda --runs "$RUNS" --preset small base --batch 8 64 --compile > "$WORK/twin-compiled.jsonl" 2>> "$WORK/twin.log"
fi

python3 - "$WORK" "$DEVICE" "$OUT" <<'EOF'
import json, os, sys
work, device, out = sys.argv[1:]
def read(name, default=""):
    path = os.path.join(work, name)
    return open(path).read() if os.path.exists(path) else default
def jsonl(name):
    return [json.loads(l) for l in read(name).splitlines() if l.startswith("{")]
def loss(d):
    try:
        return json.loads(read(f"eval-{d}.json"))
    except ValueError:
        return {"error": read(f"eval-{d}.log")[-2000:]}
report = {
    "device": device,
    "adapter": read("adapter.txt").strip(),
    "parity": {
        "greedy_text_equal": read("text-flex.txt") == read(f"text-{device}.txt") and read(f"generate-{device}.rc").strip() == "0",
        "text": {"flex": read("text-flex.txt"), device: read(f"text-{device}.txt")},
        "eval": {"flex": loss("flex"), device: loss(device)},
    },
    "bench": jsonl("bench.jsonl"),
    "bench_log": read("bench.log")[-4000:],
    "twin": jsonl("twin.jsonl"),
    "twin_compiled": jsonl("twin-compiled.jsonl"),
}
json.dump(report, open(out, "w"), indent=1)
print(f"wrote {out}: greedy text equal: {report['parity']['greedy_text_equal']}, {len(report['bench'])} bench rows, {len(report['twin'])} twin rows")
EOF
