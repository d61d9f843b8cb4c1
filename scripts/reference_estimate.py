#!/usr/bin/env python3
"""The Python tiny-diffusion project's own validation-loss estimate, for comparing its numbers with ours.

It averages, over random validation batches of 8 x 256 with t ~ U(0, 1) per sequence, each batch's
mean cross-entropy on its masked positions. `tiny-diffusion eval` instead uses fixed windows and
stratified t, which weights batches by their masked count and reads a few hundredths higher.

Usage: python3 scripts/reference_estimate.py WEIGHTS(.pt|.safetensors) [--batches 1000] [--seed 0]
       [--layers 4 --width 256 --heads 4]   (a .safetensors file from `tiny-diffusion export`)
"""

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_parity_fixture import Model  # noqa: E402
from pytorch_train import DATA, load  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights")
    p.add_argument("--batches", type=int, default=200, help="the reference uses 200")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--data", default=DATA)
    args = p.parse_args()
    torch.set_num_threads(2)

    _, val, vocab = load(args.data)
    model = Model(2, vocab, args.width, args.layers, args.heads)
    if args.weights.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(args.weights)
    else:
        state = torch.load(args.weights)
    model.load_state_dict(state)
    model.eval()

    gen = torch.Generator().manual_seed(args.seed)
    losses = []
    with torch.no_grad():
        for _ in range(args.batches):
            starts = torch.randint(len(val) - 256, (8,), generator=gen)
            clean = torch.stack([val[s : s + 256] for s in starts])
            mask = torch.rand(8, 256, generator=gen) < torch.rand(8, 1, generator=gen)
            losses.append(F.cross_entropy(model(clean.masked_fill(mask, 0))[mask], clean[mask]).item())
    mean = sum(losses) / len(losses)
    sd = (sum((x - mean) ** 2 for x in losses) / (len(losses) - 1)) ** 0.5
    print(f"{args.weights}: {mean:.4f} nats (± {sd / len(losses) ** 0.5:.4f} standard error, {len(losses)} batches)")


if __name__ == "__main__":
    main()
