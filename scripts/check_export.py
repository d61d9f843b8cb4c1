#!/usr/bin/env python3
"""Loads a `tiny-diffusion export` file into the PyTorch model of make_parity_fixture.py
(load_state_dict with strict=True) and prints greedy predictions for a masked prompt, so the
export can be checked against `tiny-diffusion generate` by eye or by script.

Usage: pip install torch safetensors
       tiny-diffusion export --out /tmp/shipped.safetensors
       python3 scripts/check_export.py /tmp/shipped.safetensors [LOGITS_OUT.txt]
"""

import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from make_parity_fixture import Model  # noqa: E402


def main():
    path = sys.argv[1]
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    state = load_file(path)
    version = 1 if "output_head.weight" in state else 2
    vocab_size, d = state["token_emb.weight"].shape
    n_layer = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    n_timesteps = state["time_emb.weight"].shape[0] if version == 1 else 128
    model = Model(version, vocab_size, d, n_layer, int(meta["n_head"]), n_timesteps)
    model.load_state_dict(state, strict=True)
    chars = meta["vocab"]
    ids = {c: i + 1 for i, c in enumerate(chars)}
    prompt = "ROMEO:\nBut soft, what light through yonder window breaks?"
    tokens = torch.tensor([[ids[c] if c != "_" else 0 for c in prompt] + [0] * 32])
    t = torch.tensor([127]) if version == 1 else None
    with torch.no_grad():
        logits = model(tokens, t)[0]
    best = "".join(chars[i - 1] if i > 0 else "_" for i in logits.argmax(-1).tolist())
    print(f"loaded strict: {n_layer} layers x {d}, {meta['n_head']} heads, {vocab_size} ids")
    print(f"argmax over prompt + 32 masks: {best!r}")
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as out:
            for row in logits.tolist():
                out.write(" ".join(f"{x:.6f}" for x in row) + "\n")


if __name__ == "__main__":
    main()
