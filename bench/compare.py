#!/usr/bin/env python3
"""Runs `tiny-diffusion bench` and its PyTorch twin side by side and prints the ratios.

Both get the same thread count (RAYON_NUM_THREADS for Burn, torch.set_num_threads for PyTorch).
Peak memory of a base training step at batch 8 is measured in separate processes that do only that,
as the process's peak resident set size.

With `--compile`, the twin runs a second time through `torch.compile`, in two more columns, and
every target is then held against the compiled twin (the floors of issue 39). Ours runs in
the twin's precision (`bench --matmul`): f32, or with `--bf16` bf16 products on both sides, for
denoising and training (the twin under autocast, ours on the AMX tiles where the CPU has them,
else f32). With
`--ns-f32`, the twin's Muon orthogonalises in f32, as ours does on CPUs without AMX tiles (on an
AVX2-only CPU torch.optim.Muon's bf16 is emulated, and the comparison would flatter ours).

On the CPU, a column gives each side's share of the peak `bench` measures for what ours multiplied
on (independent FMAs on every thread in f32; the AMX tiles' multiply-adds with `--bf16` where the
CPU has them), for the cases whose FLOPs ours counts.

`--device cuda` runs both on the GPU: ours through `--device cuda` (a build with `--features cuda`),
or `--device wgpu` with `--rust-device wgpu`; the twin on CUDA.

`--isa avx2` holds both sides to AVX2 and FMA on a CPU with AVX-512, to measure the floors' AVX2
machine's code paths on it: ours must be a build without the `avx512` feature (`cargo build
--release --no-default-features --features shipped --target-dir target/avx2`, then
TINY_DIFFUSION_BIN=target/avx2/release/tiny-diffusion), and PyTorch runs with ATEN_CPU_CAPABILITY
(its own and torch.compile's vector code), MKL_ENABLE_INSTRUCTIONS and ONEDNN_MAX_CPU_ISA set to
AVX2. The microarchitecture stays the machine's own: this is the AVX2 code, not an AVX2 CPU.

`--rounds N` runs the sides in turn N times and reports each case's median over the rounds: on a
shared host the speed drifts by tens of percent from minute to minute, and one run of each side
can land in a fast minute for one and a slow one for the other. A column then gives the lowest and
highest of the rounds' own ratios (each round's sides ran minutes apart): how far one run could
have misled.

Usage: pip install torch && cargo build --release && python3 bench/compare.py [--threads 2] [--runs 5]
       [--batch 16 64] [--compile] [--bf16] [--ns-f32] [--device cuda [--rust-device wgpu]]
       [--cases denoise|train|denoise,train] [--rounds 5] [--isa avx2]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.environ.get("TINY_DIFFUSION_BIN", os.path.join(ROOT, "target", "release", "tiny-diffusion"))

# (case, what is compared, target): time ratios want Rust/PyTorch <= target, throughput ratios >= target,
# against `torch.compile` when it runs (`--compile`), else against eager PyTorch.
TARGETS = [
    ("small/denoise_1x256", "time", 0.8),
    ("base/denoise_1x256", "time", 0.8),
    ("small/train_8x256", "tokens", 1.0),
    ("base/train_8x256", "tokens", 1.0),
    ("small/train_16x256", "tokens", 1.0),
    ("small/train_64x256", "tokens", None),
    ("base/train_64x256", "tokens", None),
    ("small/train_8x256_muon", "tokens", 1.0),
    ("small/train_16x256_muon", "tokens", 1.0),
    ("base/train_8x256_muon", "tokens", 1.0),
]


def jsonl(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return {row["case"]: row for row in map(json.loads, out.splitlines()) if row.get("case")}


def median_of_rounds(rounds):
    """Each case's row with its times and speeds the median over the rounds that measured it."""
    merged = {}
    for case in {c for r in rounds for c in r}:
        rows = [r[case] for r in rounds if case in r]
        row = dict(rows[0])
        for key in ("median_ms", "tokens_per_s"):
            if all(key in r for r in rows):
                row[key] = statistics.median(r[key] for r in rows)
        merged[case] = row
    return merged


def round_range(ours, theirs, case, key):
    """The lowest and highest ratio of ours to theirs within one round, over the rounds."""
    ratios = [o[case][key] / t[case][key] for o, t in zip(ours, theirs) if case in o and case in t]
    return f"{min(ratios):.2f}–{max(ratios):.2f}" if ratios else "—"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--preset", nargs="+", default=["small", "base"])
    p.add_argument("--batch", nargs="+", default=["8", "64"])
    p.add_argument("--compile", action="store_true", help="also time the twin through torch.compile")
    p.add_argument("--cases", default="denoise,train", help="which cases: denoise, train or both")
    p.add_argument("--rounds", type=int, default=1, help="run the sides in turn this many times; report each case's median over the rounds")
    p.add_argument("--bf16", action="store_true", help="both sides multiply in bf16: the twin under autocast, ours with --matmul bf16")
    p.add_argument("--ns-f32", action="store_true", help="the twin's Muon orthogonalises in f32")
    p.add_argument("--device", default="cpu", help="the twin's device: cpu, cuda or mps")
    p.add_argument("--isa", choices=["native", "avx2"], default="native", help="avx2: both sides held to AVX2 (ours must be built without the avx512 feature)")
    p.add_argument("--rust-device", help="ours: flex, wgpu or cuda [default: flex on the CPU, else cuda]")
    args = p.parse_args()
    rust_device = args.rust_device or ("flex" if args.device == "cpu" else "cuda")
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    if args.isa == "avx2":
        env.update(ATEN_CPU_CAPABILITY="avx2", MKL_ENABLE_INSTRUCTIONS="AVX2", ONEDNN_MAX_CPU_ISA="AVX2")
    py = [sys.executable, os.path.join(HERE, "pytorch_reference.py"), "--json", "--threads", str(args.threads)] + (["--bf16"] if args.bf16 else []) + (["--ns-f32"] if args.ns_f32 else []) + ["--device", args.device]
    # Ours runs in the twin's precision: bf16 products (the AMX tiles, where the CPU has them)
    # against autocast, f32 against f32.
    precision = ["--matmul", "bf16" if args.bf16 else "f32"]
    rs = [BIN, "bench", "--json", "--cases", args.cases, "--device", rust_device] + precision

    sizes = ["--cases", args.cases, "--runs", str(args.runs), "--preset", *args.preset, "--batch", *args.batch]
    rust_sizes = ["--runs", str(args.runs)] + [x for p_ in args.preset for x in ("--preset", p_)] + [x for b in args.batch for x in ("--batch", b)]
    # On a shared host the speed drifts by tens of percent from minute to minute; rounds that take
    # turns (ours, the twin, the compiled twin, again) and their median put both sides in the same
    # minutes.
    rounds = {"rust": [], "torch": [], "compiled": []}
    for i in range(args.rounds):
        tag = f" (round {i + 1} of {args.rounds})" if args.rounds > 1 else ""
        print(f"running tiny-diffusion bench ({args.threads} threads){tag}…", file=sys.stderr)
        rounds["rust"].append(jsonl(rs + rust_sizes, env))
        if i == 0:
            kernels = rounds["rust"][0].get("process/kernels", {}).get("kernels", "unknown")
            if args.isa == "avx2" and kernels != "AVX2":
                sys.exit(f"--isa avx2: {BIN} ran {kernels} kernels; build it without the avx512 feature (see --help)")
            print(f"ours ran {kernels} kernels; PyTorch {'is held to AVX2' if args.isa == 'avx2' else 'chooses its own'}", file=sys.stderr)
        print(f"running the PyTorch twin ({args.threads} threads){tag}…", file=sys.stderr)
        rounds["torch"].append(jsonl(py + sizes, env))
        if args.compile:
            print(f"running the PyTorch twin through torch.compile ({args.threads} threads){tag}…", file=sys.stderr)
            rounds["compiled"].append(jsonl(py + sizes + ["--compile"], env))
    rust, torch, compiled = (median_of_rounds(rounds[side]) for side in ("rust", "torch", "compiled"))

    # Each side's share of the peak of what ours multiplied on, as ours measures it: the AMX tiles'
    # in bf16 where the CPU has them, else f32 FMAs (independent chains on every thread); for the
    # cases that count their FLOPs.
    tiles = rust.get("process/tile_peak") if args.bf16 else None
    peak_name, peak = ("AMX bf16", tiles["gflops"]) if tiles else ("f32", rust.get("process/f32_peak", {}).get("gflops"))
    share = lambda row, gflop: f"{100 * gflop / (row['median_ms'] / 1e3) / peak:.0f}%" if peak and gflop and row else "—"
    extra_head = (" torch.compile | Rust/compiled |" if args.compile else "") + (" rounds' ratios |" if args.rounds > 1 else "")
    extra_head += f" % of {peak_name} peak ({peak:.0f} GFLOP/s): Rust / {'compiled' if args.compile else 'eager'} |" if peak else ""
    print(f"| case | Rust ({rust_device}) | PyTorch eager | Rust/eager |{extra_head} target | met |")
    print("|---|---|---|---|" + ("---|---|" if args.compile else "") + ("---|" if args.rounds > 1 else "") + ("---|" if peak else "") + "---|---|")
    per_token = {}
    named = {case for case, _, _ in TARGETS}
    others = [(c, "time" if "denoise" in c else "tokens", None) for c in rust if c in torch and c not in named]
    for case, kind, target in TARGETS + others:
        if case not in rust or case not in torch:
            continue
        r, t, c = rust[case], torch[case], compiled.get(case)
        if kind == "tokens":
            per_token[case] = r["tokens_per_s"]
        key, unit, digits, word, better = ("median_ms", "ms", 1, "time", "≤") if kind == "time" else ("tokens_per_s", "tok/s", 0, "speed", "≥")
        show = lambda row: f"{row[key]:.{digits}f} {unit}"
        cells = [show(r), show(t), f"{r[key] / t[key]:.2f}× {word}"]
        if args.compile:
            cells += [show(c), f"{r[key] / c[key]:.2f}× {word}"] if c else ["—", "—"]
        # The target holds against the compiled twin where it ran, else against eager PyTorch.
        ratio = r[key] / (c or t)[key]
        if args.rounds > 1:
            cells.append(round_range(rounds["rust"], rounds["compiled" if c else "torch"], case, key))
        if peak:
            cells.append(f"{share(r, r.get('gflop'))} / {share(c if args.compile else t, r.get('gflop'))}")
        met = target is None or (ratio <= target if kind == "time" else ratio >= target)
        goal = f"{better} {target}" + (" × compiled" if c else "") if target is not None else "—"
        print(f"| {case} | {' | '.join(cells)} | {goal} | {'yes' if met else 'NO'} |")
    for preset in args.preset:
        small, big = per_token.get(f"{preset}/train_8x256"), per_token.get(f"{preset}/train_64x256")
        if small and big:
            ok = big >= small * 0.95
            print(f"| {preset}: Rust batch 64 vs 8 per token | {big:.0f} vs {small:.0f} tok/s | | {big / small:.2f}× | ≥ 1.0 (5% noise) | {'yes' if ok else 'NO'} |")

    # A twin whose Muon step is far slower than its AdamW step is iterating in emulated bf16.
    for case, row in torch.items():
        adamw = torch.get(case.removesuffix("_muon"))
        if case.endswith("_muon") and adamw and not args.ns_f32 and row["tokens_per_s"] < 0.5 * adamw["tokens_per_s"]:
            print(f"note: the twin's Muon step ({case}) runs at {row['tokens_per_s'] / adamw['tokens_per_s']:.2f}× its AdamW step's "
                  "speed: this CPU has no bf16 instructions and torch.optim.Muon iterates in bf16; --ns-f32 compares like with like")

    if args.device != "cpu" or "train" not in args.cases:
        return  # peak RSS says nothing of GPU memory, and the memory case is a training step
    print(f"measuring peak memory of base training at batch 8…", file=sys.stderr)
    mem_rust = jsonl(rs[:2] + ["--json", "--cases", "train", "--preset", "base", "--batch", "8", "--runs", "2"] + precision, env)
    mem_torch = jsonl(py + ["--cases", "train", "--preset", "base", "--batch", "8", "--runs", "2"], env)
    r_mb = mem_rust["process/peak_rss"]["peak_rss_mb"]
    t_row = mem_torch["base/train_8x256"]
    t_mb = t_row["peak_rss_mb"]
    print(f"| base train 8×256: peak RSS | {r_mb:.0f} MiB | {t_mb:.0f} MiB (of which {t_row['rss_before_mb']:.0f} before the first step) | {r_mb / t_mb:.2f}× | ≤ 1.0 | {'yes' if r_mb <= t_mb else 'NO'} |")


if __name__ == "__main__":
    main()
