#!/usr/bin/env python3
"""Builds tests/fixtures/pytorch/samplers.json: the Python tiny-diffusion's own decoding loops, run
in PyTorch on the parity fixtures' weights (v1.pt, v2.pt), step by step.

- v2: `generate()` of diffusion.py (v2) for one block: confidence = the summed probability of the
  top_k characters of softmax(logits / temp), commit every masked position at or above the
  threshold (at least the most confident one), draw among the top_k. With top_k 1 (and the
  project's temperature 1.0 and threshold 0.9) it is deterministic, so the decoded characters must
  match ours exactly: `--strategy topk-sum --top-k 1 --threshold 0.9 --span 0`.
- v1: `sample_confidence()` and `sample_topk()` of model.py (v1): argmax of softmax(logits / T),
  with the step index as the timestep: `--timestep step`.

The loops are transcribed from the Python project (v2 diffusion.py `generate`, v1 model.py) onto
the independent model of make_parity_fixture.py. A fixture is kept only if the mask id never wins
the argmax at a decoded position (the Python code would then write a mask; ours never proposes it).

Usage: pip install torch && python3 scripts/make_sampler_fixture.py
"""

import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_parity_fixture import Model  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "pytorch")
MASK = 0


def load(version, vocab, d, n_layer, n_head):
    model = Model(version, vocab=vocab, d=d, n_layer=n_layer, n_head=n_head)
    model.load_state_dict(torch.load(os.path.join(FIXTURES, f"v{version}.pt"), weights_only=True))
    return model.eval()


@torch.no_grad()
def v2_generate(model, prompt, block_len, temp, threshold, top_k):
    """diffusion.py (v2) `generate`, one block; returns the window after every step."""
    x = torch.tensor([prompt + [MASK] * block_len])
    masked = torch.zeros_like(x, dtype=torch.bool)
    masked[0, len(prompt):] = True
    steps = []
    while masked.any():
        logits = model(x)
        probs = F.softmax(logits / temp, dim=-1)
        top_k_probs, top_k_indices = torch.topk(probs, k=top_k, dim=-1)
        confidences = top_k_probs.sum(dim=-1)
        decode_mask = (confidences >= threshold) & masked
        if not decode_mask.any():
            masked_confidences = torch.where(masked, confidences, torch.tensor(-float("inf")))
            decode_mask.view(-1)[masked_confidences.argmax()] = True
        top_k_probs_norm = top_k_probs / top_k_probs.sum(dim=-1, keepdim=True)
        sampled_k = torch.multinomial(top_k_probs_norm.view(-1, top_k), 1).view(1, -1)
        sampled = torch.gather(top_k_indices, -1, sampled_k.unsqueeze(-1)).squeeze(-1)
        if (sampled[decode_mask] == MASK).any():
            return None
        x = torch.where(decode_mask, sampled, x)
        masked = masked & ~decode_mask
        steps.append(x[0].tolist())
    return steps


@torch.no_grad()
def v1_sample(model, prompt, seq_len, method, temperature, threshold=None, k=None, diffusion_steps=128):
    """model.py (v1) `sample_confidence` / `sample_topk` for one sequence; returns x after every step."""
    x = torch.full((1, seq_len), MASK, dtype=torch.long)
    x[0, : len(prompt)] = torch.tensor(prompt)
    masked = torch.ones(1, seq_len, dtype=torch.bool)
    masked[0, : len(prompt)] = False
    steps = []
    for step in range(seq_len):
        if not masked.any():
            break
        t = torch.clamp(torch.full((1,), step, dtype=torch.long), 0, diffusion_steps - 1)
        probs = F.softmax(model(x, t) / temperature, dim=-1)
        confidences, predicted = torch.max(probs, dim=-1)
        if method == "confidence":
            chosen = (confidences >= threshold) & masked
            if not chosen.any():
                best = torch.where(masked, confidences, torch.tensor(-float("inf"))).argmax()
                chosen.view(-1)[best] = True
        else:
            confidences = confidences.masked_fill(~masked, -float("inf"))
            k_actual = min(k, int(masked.sum()))
            chosen = torch.zeros_like(masked)
            chosen[0, torch.topk(confidences, k=k_actual, dim=1).indices[0]] = True
            chosen &= masked
        if (predicted[chosen] == MASK).any():
            return None
        x = torch.where(chosen, predicted, x)
        masked = masked & ~chosen
        steps.append(x[0].tolist())
    return steps


def first_valid(make, vocab, prompt_len):
    """The first prompt (from seeds 0, 1, …) whose decoding never writes the mask."""
    for seed in range(100):
        g = torch.Generator().manual_seed(seed)
        prompt = torch.randint(1, vocab, (prompt_len,), generator=g).tolist()
        steps = make(prompt)
        if steps is not None:
            return prompt, steps
    raise SystemExit("no prompt decodes without the mask winning")


def main():
    torch.manual_seed(0)
    v2 = load(2, vocab=66, d=48, n_layer=2, n_head=6)
    v1 = load(1, vocab=128, d=32, n_layer=2, n_head=4)
    cases = []
    prompt, steps = first_valid(lambda p: v2_generate(v2, p, 24, temp=1.0, threshold=0.9, top_k=1), 66, 16)
    cases.append({"name": "v2_topk_sum", "weights": "v2.pt", "prompt": prompt, "length": 40,
                  "flags": "--strategy topk-sum --top-k 1 --threshold 0.9 --temperature 1 --span 0 --remask none --polish 0 --top-p 1 --lanes 1 --cache false --apart false", "steps": steps})
    prompt, steps = first_valid(lambda p: v2_generate(v2, p, 24, temp=1.0, threshold=0.1, top_k=1), 66, 16)
    cases.append({"name": "v2_topk_sum_parallel", "weights": "v2.pt", "prompt": prompt, "length": 40,
                  "flags": "--strategy topk-sum --top-k 1 --threshold 0.1 --temperature 1 --span 0 --remask none --polish 0 --top-p 1 --lanes 1 --cache false --apart false", "steps": steps})
    prompt, steps = first_valid(lambda p: v1_sample(v1, p, 40, "confidence", 1.0, threshold=0.95), 128, 8)
    cases.append({"name": "v1_confidence", "weights": "v1.pt", "prompt": prompt, "length": 40,
                  "flags": "--strategy confidence --threshold 0.95 --temperature 0 --span 0 --timestep step --remask none --polish 0 --top-p 1 --lanes 1 --cache false --apart false", "steps": steps})
    prompt, steps = first_valid(lambda p: v1_sample(v1, p, 40, "confidence", 1.0, threshold=0.3), 128, 8)
    cases.append({"name": "v1_confidence_parallel", "weights": "v1.pt", "prompt": prompt, "length": 40,
                  "flags": "--strategy confidence --threshold 0.3 --temperature 0 --span 0 --timestep step --remask none --polish 0 --top-p 1 --lanes 1 --cache false --apart false", "steps": steps})
    prompt, steps = first_valid(lambda p: v1_sample(v1, p, 40, "topk", 1.0, k=3), 128, 8)
    cases.append({"name": "v1_topk", "weights": "v1.pt", "prompt": prompt, "length": 40,
                  "flags": "--strategy topk --per-step 3 --temperature 0 --span 0 --timestep step --remask none --polish 0 --top-p 1 --lanes 1 --cache false --apart false", "steps": steps})
    for c in cases:
        counts = [sum(a != b for a, b in zip(s, p)) for s, p in zip(c["steps"], [c["prompt"] + [MASK] * (c["length"] - len(c["prompt"]))] + c["steps"])]
        print(f"{c['name']}: {len(c['steps'])} steps, committed per step {counts}")
    with open(os.path.join(FIXTURES, "samplers.json"), "w") as f:
        json.dump(cases, f, indent=1)


if __name__ == "__main__":
    main()
