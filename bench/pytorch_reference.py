#!/usr/bin/env python3
"""The PyTorch twin of `tiny-diffusion bench`: the same model, the same training step, the same cases.

Model: scripts/make_parity_fixture.py's PyTorch implementation (the one our parity test checks our
logits against), in the v2 layout with Tiny Shakespeare's 66 ids. Training step: random windows,
stratified mask rates, cross-entropy on masked positions, backward, gradient-norm clipping at 1.0,
AdamW (weight decay 0.01), as `tiny-diffusion train` does; at the first batch size also with Muon
for the blocks' matrices (torch.optim.Muon, LR 0.02) and AdamW for the rest, as the shipped recipe
trains (case `…_muon`). `--compile` runs the model through `torch.compile` (the same case names).
`--bf16` runs the denoising step and training's forward pass under `torch.autocast("cpu",
dtype=torch.bfloat16)`: the mixed precision `tiny-diffusion train` uses on CPUs with AMX tiles, and
ours runs inference in with `--matmul bf16` (torch.optim.Muon already runs its Newton–Schulz
iterations in bf16). `--ns-f32` runs Muon's
Newton–Schulz iterations in f32, as ours does on CPUs without AMX tiles: on a CPU without bf16
instructions (AVX2 only) torch.optim.Muon's bf16 products are emulated and several times slower.

Prints one JSON object per case (the same case names as `tiny-diffusion bench --json`), or a table.
`--device cuda` (or `mps`) runs it on a GPU, each timing closed by a synchronize.

Usage: pip install torch && python3 bench/pytorch_reference.py [--preset small base] [--batch 8 64]
       [--runs 5] [--threads 2] [--cases denoise,train] [--compile] [--bf16] [--ns-f32]
       [--device cpu|cuda|mps] [--json]
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from make_parity_fixture import Model  # noqa: E402

PRESETS = {"tiny": (2, 2, 64, 64), "small": (4, 4, 256, 256), "base": (6, 6, 384, 256)}  # layers, heads, width, context
VOCAB = 66


DEVICE = torch.device("cpu")


def synchronize():
    """GPU kernels run asynchronously: a timing ends when they have."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
    elif DEVICE.type == "mps":
        torch.mps.synchronize()


def median_ms(warmup, runs, fn):
    for _ in range(warmup):
        fn()
    synchronize()
    times = []
    for _ in range(max(runs, 1)):
        t = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def masked_batch(batch, seq, gen):
    tokens = torch.randint(1, VOCAB, (batch, seq), generator=gen)
    u = torch.rand(1, generator=gen)
    rates = ((u + torch.arange(batch) / batch) % 1.0).clamp_min(1e-3)
    mask = torch.rand(batch, seq, generator=gen) < rates[:, None]
    mask[:, 0] |= ~mask.any(dim=1)  # every row has a masked position
    return tokens.masked_fill(mask, 0).to(DEVICE), tokens.to(DEVICE), mask.to(DEVICE)


def train_step(model, opts, batch, seq, gen, bf16):
    inputs, targets, mask = masked_batch(batch, seq, gen)
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(inputs)
    loss = F.cross_entropy(logits.float()[mask], targets[mask])
    for opt in opts:
        opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    for opt in opts:
        opt.step()


def optimizers(model, muon):
    """AdamW for everything, or Muon for the blocks' matrices and AdamW for the rest."""
    if not muon:
        return [torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)]
    matrices = [p for n, p in model.named_parameters() if n.startswith("blocks.") and p.ndim == 2]
    rest = [p for n, p in model.named_parameters() if not (n.startswith("blocks.") and p.ndim == 2)]
    return [torch.optim.Muon(matrices, lr=0.02, weight_decay=0.01), torch.optim.AdamW(rest, lr=1e-4, weight_decay=0.01)]


def newton_schulz_f32(grad, ns_coefficients, ns_steps, eps):
    """torch.optim.Muon's Newton-Schulz iterations (torch/optim/_muon.py), in f32 instead of bf16."""
    a, b, c = ns_coefficients
    x = grad.to(dtype=torch.float32, copy=True)
    if grad.size(0) > grad.size(1):
        x = x.T
    x.div_(x.norm().clamp(min=eps))
    for _ in range(ns_steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if grad.size(0) > grad.size(1) else x


def run(args):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    for name in args.preset:
        n_layer, n_head, d, seq = PRESETS[name]
        model = Model(2, VOCAB, d, n_layer, n_head).to(DEVICE)
        run_model = torch.compile(model) if args.compile else model
        if "denoise" in args.cases:
            model.eval()
            tokens, _, _ = masked_batch(1, seq, gen)
            with torch.inference_mode(), torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=args.bf16):
                ms = median_ms(3, max(args.runs, 5), lambda: run_model(tokens))
            yield {"case": f"{name}/denoise_1x{seq}", "median_ms": ms}
        if "train" in args.cases:
            model.train()
            cases = [(b, False) for b in args.batch] + [(args.batch[0], True)]
            for batch, muon in cases:
                opts = optimizers(model, muon)
                rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                # Batches past 8 × 256 are timed twice only, as `tiny-diffusion bench` times them.
                runs = 2 if batch * seq > 8 * 256 else args.runs
                # Two warm-up steps, as ours takes: compiling takes a few steps' time, and a
                # process's first steps fault in its memory.
                ms = median_ms(2, runs, lambda: train_step(run_model, opts, batch, seq, gen, args.bf16))
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                yield {
                    "case": f"{name}/train_{batch}x{seq}{'_muon' if muon else ''}",
                    "median_ms": ms,
                    "tokens_per_s": batch * seq / ms * 1e3,
                    "peak_rss_mb": rss / 1024,
                    "rss_before_mb": rss_before / 1024,
                }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", nargs="+", default=["small", "base"], choices=PRESETS)
    p.add_argument("--batch", nargs="+", type=int, default=[8, 64])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cases", default="denoise,train")
    p.add_argument("--compile", action="store_true", help="run the model through torch.compile")
    p.add_argument("--bf16", action="store_true", help="denoise and train under bf16 autocast")
    p.add_argument("--ns-f32", action="store_true", help="Muon's Newton-Schulz iterations in f32")
    p.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if args.ns_f32:
        from torch.optim import _muon  # torch.optim.Muon's step looks the function up here
        _muon._zeropower_via_newtonschulz = newton_schulz_f32
    args.cases = args.cases.split(",")
    torch.set_num_threads(args.threads)
    if not args.json:
        compiled = (" · torch.compile" if args.compile else "") + (" · bf16 autocast" if args.bf16 else "") + (" · f32 Newton-Schulz" if args.ns_f32 else "")
        where = f"{torch.get_num_threads()} threads" if DEVICE.type == "cpu" else str(DEVICE)
        print(f"PyTorch {torch.__version__} · {where} · median of {args.runs} runs{compiled}")
    for row in run(args):
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            extra = f"  {row['tokens_per_s']:.0f} tokens/s" if "tokens_per_s" in row else ""
            print(f"{row['case']:<24} {row['median_ms']:10.2f} ms{extra}", flush=True)


if __name__ == "__main__":
    main()
