#!/usr/bin/env python3
"""Draws the quality-versus-speed chart of `tiny-diffusion bench decode --json` as an SVG, with no
dependencies: characters per step across, valid-word rate up, each point's distinct-bigram rate as
its colour, the floors of the parallel-decoding issue as dashed lines. Ringed and labelled: the
settings no other setting beats on both axes among those that keep distinct bigrams ≥ 0.85.

Usage: tiny-diffusion bench decode --json > runs.jsonl
       python3 scripts/plot_decode_frontier.py runs.jsonl [more.jsonl …] > docs/decoding-frontier.svg
"""

import json
import sys
from html import escape

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 1000, 520, 70, 400, 30, 60
X_MIN, X_MAX, Y_MIN, Y_MAX = 0.0, 6.0, 0.5, 1.0


def load(paths):
    rows = []
    for path in paths:
        for line in open(path):
            row = json.loads(line)
            if "setting" in row:
                rows.append(row)
    return rows


def frontier(rows, min_distinct=0.85):
    ok = [r["distinct_bigram_rate"] >= min_distinct for r in rows]
    keys = [(r["characters_per_step"], r["valid_word_rate"]) for r in rows]
    out = []
    for i, k in enumerate(keys):
        dominated = any(j != i and ok[j] and all(o >= m for o, m in zip(other, k)) and any(o > m for o, m in zip(other, k))
                        for j, other in enumerate(keys))
        out.append(ok[i] and not dominated)
    return out


def short(setting):
    for long, brief in [("--strategy ", ""), ("--factor ", "f "), ("--temperature ", "T "), ("--threshold ", "τ "),
                        ("--remask low-confidence --remask-below ", "remask ρ "), ("--", "")]:
        setting = setting.replace(long, brief)
    return setting or "(the old defaults)"


def colour(distinct):
    # Red (repetitive) → green (varied) over distinct bigrams 0.5 … 1.0.
    t = min(max((distinct - 0.5) / 0.5, 0.0), 1.0)
    return f"rgb({int(220 - 170 * t)},{int(60 + 140 * t)},{int(60 + 30 * t)})"


def main():
    rows = load(sys.argv[1:])
    on = frontier(rows)
    px = lambda x: PAD_L + (min(x, X_MAX) - X_MIN) / (X_MAX - X_MIN) * (W - PAD_L - PAD_R)
    py = lambda y: PAD_T + (Y_MAX - max(y, Y_MIN)) / (Y_MAX - Y_MIN) * (H - PAD_T - PAD_B)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    for i in range(int((X_MAX - X_MIN) / 0.5) + 1):
        x = X_MIN + i * 0.5
        out.append(f'<line x1="{px(x)}" y1="{py(Y_MIN)}" x2="{px(x)}" y2="{py(Y_MAX)}" stroke="#eee"/>')
        out.append(f'<text x="{px(x)}" y="{py(Y_MIN) + 16}" text-anchor="middle">{x:g}</text>')
    for i in range(6):
        y = Y_MIN + i * 0.1
        out.append(f'<line x1="{px(X_MIN)}" y1="{py(y)}" x2="{px(X_MAX)}" y2="{py(y)}" stroke="#eee"/>')
        out.append(f'<text x="{px(X_MIN) - 8}" y="{py(y) + 4}" text-anchor="end">{y:.1f}</text>')
    out.append(f'<text x="{(px(X_MIN) + px(X_MAX)) / 2}" y="{H - 15}" text-anchor="middle">characters per step (forward pass)</text>')
    out.append(f'<text x="18" y="{(py(Y_MIN) + py(Y_MAX)) / 2}" text-anchor="middle" transform="rotate(-90 18 {(py(Y_MIN) + py(Y_MAX)) / 2})">valid-word rate</text>')
    out.append(f'<line x1="{px(2.5)}" y1="{py(Y_MIN)}" x2="{px(2.5)}" y2="{py(Y_MAX)}" stroke="#888" stroke-dasharray="4 4"/>')
    out.append(f'<line x1="{px(X_MIN)}" y1="{py(0.9)}" x2="{px(X_MAX)}" y2="{py(0.9)}" stroke="#888" stroke-dasharray="4 4"/>')
    out.append(f'<text x="{px(2.5) + 4}" y="{py(Y_MIN) - 6}" fill="#666">floors: 2.5 chars/step, 0.90 valid, 0.85 distinct</text>')
    labels = []
    for r, f in zip(rows, on):
        x, y = px(r["characters_per_step"]), py(r["valid_word_rate"])
        ring = ' stroke="black" stroke-width="2"' if f else ' stroke="white"'
        title = escape(f'{r["setting"] or "(defaults)"}: {r["characters_per_step"]:.2f} chars/step, '
                       f'{r["valid_word_rate"]:.3f} valid, {r["distinct_bigram_rate"]:.3f} distinct')
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{colour(r["distinct_bigram_rate"])}"{ring}><title>{title}</title></circle>')
        if f:
            labels.append((y, x, r))
    # Frontier labels in a column at the right, joined to their points.
    labels.sort()
    for i, (y, x, r) in enumerate(labels):
        ly = PAD_T + 10 + i * ((H - PAD_T - PAD_B) / max(len(labels), 1))
        text = escape(short(r["setting"]))
        out.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{W - PAD_R + 6}" y2="{ly:.1f}" stroke="#bbb"/>')
        out.append(f'<text x="{W - PAD_R + 10}" y="{ly + 4:.1f}" font-size="9">{text}</text>')
    out.append(f'<text x="{PAD_L}" y="{PAD_T - 10}" fill="#444">colour: distinct word bigrams (red 0.5 → green 1.0); ringed: the frontier among settings with distinct ≥ 0.85</text>')
    out.append("</svg>")
    print("\n".join(out))


if __name__ == "__main__":
    main()
