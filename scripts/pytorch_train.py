#!/usr/bin/env python3
"""Trains the PyTorch twin of our model on the same data, to check our training against PyTorch's.

The model is scripts/make_parity_fixture.py's (the one our parity test matches logit for logit).
The weights are saved with torch.save(state_dict) in the v2 layout, so `tiny-diffusion eval
--checkpoint RUN.pt --data ...` measures them exactly as it measures our own checkpoints.

Two recipes:
  --recipe reference  the Python tiny-diffusion project's: AdamW 3e-4 constant (PyTorch defaults,
                      weight decay 0.01, eps 1e-8), no clipping, t ~ U(0, 1) per sequence, N(0, 0.02)
                      init of every weight.
  --recipe ours       `tiny-diffusion train --preset small`'s: AdamW with warmup and cosine decay to
                      0.1 × peak, weight decay 0.01, global-norm clipping at 1.0, stratified t, our
                      init (PyTorch/Burn default linears, N(0, 1) embedding, zero output
                      projections, N(0, 0.001) head).
Flags override parts of a recipe (--lr, --eps, --clip, ...).

Usage: pip install torch && python3 scripts/pytorch_train.py --recipe reference --steps 600 \
         --out runs/torch-ref [--save-at 600 2000] [--threads 2]
"""

import argparse
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_parity_fixture import Model  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "assets", "tinyshakespeare.txt")


def load(path):
    """Train ids, validation ids (the last 10%) and vocabulary size, as our Corpus splits them."""
    text = open(path, encoding="utf-8").read()
    chars = sorted(set(text))
    stoi = {c: i + 1 for i, c in enumerate(chars)}  # id 0 is the mask, as in our vocabulary
    ids = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    split = len(ids) - len(ids) // 10
    return ids[:split], ids[split:], len(chars) + 1


def init_weights(model, recipe, emb_std=None):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if emb_std is not None and name == "token_emb.weight":
                p.normal_(0.0, emb_std)
            elif recipe == "reference":
                p.normal_(0.0, 0.02)
            elif name.endswith("c_proj.weight"):
                p.zero_()
            elif name == "lm_head.weight":
                p.normal_(0.0, 0.001)
            # else: PyTorch's defaults, which are Burn's (uniform ±1/√fan_in, N(0, 1) embedding)


def batch(train, b, seq, schedule, gen):
    starts = torch.randint(len(train) - seq, (b,), generator=gen)
    x = torch.stack([train[s : s + seq] for s in starts])
    if schedule == "uniform":
        rates = torch.rand(b, generator=gen)
    else:
        rates = (torch.rand(1, generator=gen) + torch.arange(b) / b) % 1.0
    rates = rates.clamp_min(1e-3)
    mask = torch.rand(b, seq, generator=gen) < rates[:, None]
    return x.masked_fill(mask, 0), x, mask


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", choices=["reference", "ours"], default="reference")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--lr", type=float)
    p.add_argument("--warmup", type=int, default=60)
    p.add_argument("--eps", type=float, default=1e-8)
    p.add_argument("--clip", type=float)
    p.add_argument("--emb-lr", type=float, help="peak AdamW LR of the token embedding (default: --lr)")
    p.add_argument("--muon-lr", type=float,
                   help="train the 2-D block weights with Muon at this peak LR (embedding and head stay on AdamW)")
    p.add_argument("--init", choices=["reference", "ours"], help="weight init (default: the recipe's)")
    p.add_argument("--emb-std", type=float, help="std of the token embedding's N(0, std) init")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=DATA)
    p.add_argument("--out", required=True, help="prefix: writes OUT-STEP.pt and OUT.log")
    p.add_argument("--save-at", type=int, nargs="*", default=[])
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    train, _, vocab = load(args.data)
    ours = args.recipe == "ours"
    peak = args.lr if args.lr is not None else (1e-3 if ours else 3e-4)
    clip = args.clip if args.clip is not None else (1.0 if ours else 0.0)
    schedule = "stratified" if ours else "uniform"

    def lr_at(step):
        if not ours:
            return peak
        warmup = max(min(args.warmup, args.steps // 10), 1)
        if step < warmup:
            return peak * (step + 1) / warmup
        progress = min((step - warmup) / max(args.steps - warmup, 1), 1.0)
        return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    model = Model(2, vocab, args.width, args.layers, args.heads)
    init_weights(model, args.init or args.recipe, args.emb_std)
    if args.muon_lr:
        blocks = [p for n, p in model.named_parameters() if n.startswith("blocks.")]
        emb = [p for n, p in model.named_parameters() if n == "token_emb.weight"]
        others = [p for n, p in model.named_parameters() if not n.startswith("blocks.") and n != "token_emb.weight"]
        muon = torch.optim.Muon(blocks, lr=args.muon_lr, weight_decay=0.0)
        groups = [{"params": others}, {"params": emb, "lr": args.emb_lr or peak}]
        opts = [torch.optim.AdamW(groups, lr=peak, weight_decay=0.01, eps=args.eps), muon]
    else:
        opts = [torch.optim.AdamW(model.parameters(), lr=peak, weight_decay=0.01, eps=args.eps)]
    saves = set(args.save_at) | {args.steps}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    log = open(args.out + ".log", "a")
    start = time.time()
    for step in range(args.steps):
        for opt in opts:
            for group in opt.param_groups:
                group.setdefault("peak", group["lr"])
                group["lr"] = group["peak"] * lr_at(step) / peak
        inputs, targets, mask = batch(train, args.batch, args.seq, schedule, gen)
        loss = F.cross_entropy(model(inputs)[mask], targets[mask])
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        for opt in opts:
            opt.step()
        done = step + 1
        if done % 100 == 0 or done == args.steps:
            line = f"step {done} loss {loss.item():.4f} lr {lr_at(step):.2e} wall {time.time() - start:.0f} s"
            print(line, flush=True)
            print(line, file=log, flush=True)
        if done in saves:
            path = f"{args.out}-{done}.pt"
            torch.save(model.state_dict(), path + ".tmp")
            os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
