#!/usr/bin/env python3
"""Builds the PyTorch parity fixtures in tests/fixtures/pytorch/.

Small random models in the formats of the Python tiny-diffusion project (v1 and v2 diffusion,
v2's autoregressive `gpt.py` and its uniform-noise `uniform.py`), written with
torch.save exactly as that project saves its weights, plus inputs, the logits PyTorch computes
for them, the gradients of the masked cross-entropy for every weight, and the weights after two
Muon + AdamW steps. `cargo test` imports the .pt files and must reproduce the logits, the
gradients and the optimiser's steps (tests/pytorch_import.rs).

This is an independent PyTorch implementation of the architecture described in issue 5:
bias-free linears, half-split rotary embedding (base 10000) on q and k followed by parameter-free
RMSNorm on q and k, ReLU² MLP, parameter-free RMSNorm (F.rms_norm, default eps) after the embedding,
before attention, before the MLP and before the head.

Usage: pip install torch && python3 scripts/make_parity_fixture.py [OUT_DIR]
"""

import copy
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "pytorch")
ROPE_BASE = 10000.0


def norm(x):
    return F.rms_norm(x, (x.size(-1),))


def rotary(seq_len, head_dim):
    inv_freq = 1.0 / (ROPE_BASE ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    return angles.cos()[None, :, None, :], angles.sin()[None, :, None, :]


def apply_rotary(x, cos, sin):
    d = x.shape[3] // 2
    x1, x2 = x[..., :d], x[..., d:]
    return torch.cat([x1 * cos + x2 * sin, x1 * (-sin) + x2 * cos], dim=3)


class Attention(nn.Module):
    def __init__(self, d, n_head, causal=False):
        super().__init__()
        self.n_head = n_head
        self.causal = causal
        self.c_q = nn.Linear(d, d, bias=False)
        self.c_k = nn.Linear(d, d, bias=False)
        self.c_v = nn.Linear(d, d, bias=False)
        self.c_proj = nn.Linear(d, d, bias=False)

    def forward(self, x, cos, sin):
        b, t, d = x.shape
        shape = (b, t, self.n_head, d // self.n_head)
        q = norm(apply_rotary(self.c_q(x).view(shape), cos, sin))
        k = norm(apply_rotary(self.c_k(x).view(shape), cos, sin))
        v = self.c_v(x).view(shape)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=self.causal)
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, d))


class MLP(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d, bias=False)
        self.c_proj = nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        return self.c_proj(F.relu(self.c_fc(x)).square())


class Block(nn.Module):
    def __init__(self, d, n_head, causal=False):
        super().__init__()
        self.attn = Attention(d, n_head, causal)
        self.mlp = MLP(d)

    def forward(self, x, cos, sin):
        x = x + self.attn(norm(x), cos, sin)
        return x + self.mlp(norm(x))


class Model(nn.Module):
    """v1: timestep embedding and `output_head`; v2: no timestep embedding and `lm_head`;
    `causal`: v2's gpt.py (the same names, causal attention, no mask id in the vocabulary)."""

    def __init__(self, version, vocab, d, n_layer, n_head, n_timesteps=128, causal=False):
        super().__init__()
        self.version = version
        self.n_head = n_head
        self.token_emb = nn.Embedding(vocab, d)
        if version == 1:
            self.time_emb = nn.Embedding(n_timesteps, d)
        self.blocks = nn.ModuleList([Block(d, n_head, causal) for _ in range(n_layer)])
        head = nn.Linear(d, vocab, bias=False)
        if version == 1:
            self.output_head = head
        else:
            self.lm_head = head

    def forward(self, idx, t=None):
        x = self.token_emb(idx)
        if self.version == 1:
            x = x + self.time_emb(t)[:, None, :]
        x = norm(x)
        cos, sin = rotary(idx.shape[1], x.shape[2] // self.n_head)
        for block in self.blocks:
            x = block(x, cos, sin)
        head = self.output_head if self.version == 1 else self.lm_head
        return head(norm(x))


def randomize(model):
    # Default inits leave the residual stream tiny; wider weights make the logits a real test.
    with torch.no_grad():
        for name, p in model.named_parameters():
            std = 1.0 if "emb" in name else 1.5 / p.shape[1] ** 0.5
            p.normal_(0.0, std)


def save_case(name, model, vocab, seq_len, with_timesteps):
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(1, vocab, (2, seq_len), generator=g)
    tokens[torch.rand(2, seq_len, generator=g) < 0.4] = 0  # id 0 is the mask in both formats
    timesteps = torch.tensor([5, 120]) if with_timesteps else None
    with torch.no_grad():
        logits = model(tokens, timesteps)
    torch.save(model.state_dict(), os.path.join(OUT, f"{name}.pt"))
    expected = {"tokens": tokens, "logits": logits.float()}
    if with_timesteps:
        expected["timesteps"] = timesteps
    torch.save(expected, os.path.join(OUT, f"{name}_expected.pt"))
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, logits {tuple(logits.shape)}")
    return tokens, timesteps


def save_grads(name, model, vocab, tokens, timesteps):
    """Gradients of the training loss (mean cross-entropy on masked positions) for every weight."""
    g = torch.Generator().manual_seed(2)
    targets = torch.randint(1, vocab, tokens.shape, generator=g)
    mask = tokens == 0
    model.zero_grad()
    loss = F.cross_entropy(model(tokens, timesteps)[mask], targets[mask])
    loss.backward()
    out = {"targets": targets, "loss": loss.detach().reshape(1)}
    out.update({f"grad.{n}": p.grad.clone() for n, p in model.named_parameters()})
    torch.save(out, os.path.join(OUT, f"{name}_grads.pt"))
    print(f"{name}: loss {loss.item():.4f}, gradients of {len(out) - 2} weights")


def newton_schulz_f32(grad, ns_coefficients, ns_steps, eps):
    """PyTorch's Muon orthogonalisation (torch/optim/_muon.py) in float32 instead of bfloat16.
    The quintic iteration does not converge; it only pushes singular values into ≈ [0.5, 1.5],
    so bfloat16 rounding moves single entries of its output by up to ≈ 15%: too much for a
    parity test of an f32 implementation."""
    a, b, c = ns_coefficients
    x = grad.float().clone()
    if grad.size(0) > grad.size(1):
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if grad.size(0) > grad.size(1) else x


def save_muon_steps(name, model, vocab, tokens, timesteps):
    """Every weight after two training steps on save_grads' batch with the Muon recipe: PyTorch's
    Muon (LR 0.02, no weight decay; Newton-Schulz in float32) for the blocks' matrices, AdamW
    (LR 1e-3, weight decay 0.01, eps 1e-8) for the embedding and the head."""
    torch.optim._muon._zeropower_via_newtonschulz = newton_schulz_f32
    model = copy.deepcopy(model)
    targets = torch.randint(1, vocab, tokens.shape, generator=torch.Generator().manual_seed(2))
    mask = tokens == 0
    blocks = [p for n, p in model.named_parameters() if n.startswith("blocks.")]
    others = [p for n, p in model.named_parameters() if not n.startswith("blocks.")]
    opts = [torch.optim.Muon(blocks, lr=0.02, weight_decay=0.0),
            torch.optim.AdamW(others, lr=1e-3, weight_decay=0.01, eps=1e-8)]
    for _ in range(2):
        for opt in opts:
            opt.zero_grad()
        F.cross_entropy(model(tokens, timesteps)[mask], targets[mask]).backward()
        for opt in opts:
            opt.step()
    torch.save({f"after.{n}": p.detach().clone() for n, p in model.named_parameters()},
               os.path.join(OUT, f"{name}_muon_steps.pt"))
    print(f"{name}: weights after two Muon + AdamW steps")


class CallsAFunction:
    """Unpickling this runs os.system: a safe reader must refuse it without running it."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/tiny-diffusion-pickle-ran",))


def save_without_mask(name, causal, token_seed):
    """A random v2-named model over Tiny Shakespeare's 65 characters without a mask id (gpt.py's and
    uniform.py's layout), saved as they save it, with two rows of tokens and PyTorch's logits."""
    model = Model(2, vocab=65, d=48, n_layer=2, n_head=6, causal=causal)
    randomize(model)
    g = torch.Generator().manual_seed(token_seed)
    tokens = torch.randint(0, 65, (2, 40), generator=g)
    with torch.no_grad():
        logits = model(tokens)
    torch.save(model.state_dict(), os.path.join(OUT, f"{name}.pt"))
    torch.save({"tokens": tokens, "logits": logits.float()}, os.path.join(OUT, f"{name}_expected.pt"))
    print(f"{name}: logits {tuple(logits.shape)}")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)

    v1 = Model(1, vocab=128, d=32, n_layer=2, n_head=4)
    randomize(v1)
    save_grads("v1", v1, 128, *save_case("v1", v1, 128, 40, with_timesteps=True))

    # Tiny Shakespeare's vocabulary size (65 characters + the mask), 6 heads as the reference.
    v2 = Model(2, vocab=66, d=48, n_layer=2, n_head=6)
    randomize(v2)
    case = save_case("v2", v2, 66, 40, with_timesteps=False)
    save_grads("v2", v2, 66, *case)
    save_muon_steps("v2", v2, 66, *case)

    # gpt.py's layout: Tiny Shakespeare's 65 characters (no mask id), causal attention.
    save_without_mask("gpt", causal=True, token_seed=3)

    # Malformed files, from a one-layer model to keep them small.
    small = Model(2, vocab=66, d=12, n_layer=1, n_head=6)
    state = small.state_dict()
    missing = {k: v for k, v in state.items() if k != "lm_head.weight"}
    torch.save(missing, os.path.join(OUT, "bad_missing_key.pt"))
    wrong = dict(state)
    wrong["blocks.0.attn.c_k.weight"] = torch.zeros(12, 10)
    torch.save(wrong, os.path.join(OUT, "bad_wrong_shape.pt"))
    hostile = dict(state)
    hostile["payload"] = CallsAFunction()
    torch.save(hostile, os.path.join(OUT, "bad_calls_function.pt"))
    try:
        torch.load(os.path.join(OUT, "bad_calls_function.pt"), weights_only=True)
        raise SystemExit("torch.load(weights_only=True) accepted the hostile file")
    except Exception as e:  # PyTorch's own safe loader refuses it too
        print(f"bad_calls_function: torch refuses it too ({type(e).__name__})")

    # uniform.py's layout: gpt.py's keys and 65 characters (no mask id), bidirectional attention.
    # Last, so that the random draws of the cases above stay as they were.
    save_without_mask("uniform", causal=False, token_seed=4)


if __name__ == "__main__":
    main()
