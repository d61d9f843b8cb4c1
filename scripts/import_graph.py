#!/usr/bin/env python3
"""The import graph of src/: which module uses which (`use crate::…`, `use super::…`,
`crate::a::b` paths in code, comments and tests left out), its circles, its upward imports (a
layer using one above it: the engine using a front end, a front end the command line), and
where the command line reaches into the TUI past its entry point.

Usage: python3 scripts/import_graph.py [--edges]   (exit 1 when there is a circle)
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def modules():
    """Module path (a tuple) → file, for every .rs file under src/."""
    found = {}
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), ROOT)[:-3].split(os.sep)
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            if rel and (rel[-1] == "tests" or rel[-1].endswith("_tests")):
                continue  # test modules may reach anywhere
            found[tuple(rel)] = os.path.join(dirpath, f)
    return found


def strip_tests(text):
    """The file's code without comments and without its `#[cfg(test)] mod tests { … }` block
    (tests may reach anywhere)."""
    m = re.search(r"#\[cfg\(test\)\]\s*mod \w+\s*\{", text)
    text = text[: m.start()] if m else text
    return re.sub(r"//.*", "", text)


def resolve(module, path, known):
    """The longest known module that `path` (a list of segments, from `crate` or `super`) names."""
    if path[0] == "crate":
        base, rest = (), path[1:]
    elif path[0] == "super":
        base, rest = module, path
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    elif path[0] == "self":
        base, rest = module, path[1:]
    else:
        return None
    for n in range(len(rest), -1, -1):
        cand = tuple(base) + tuple(rest[:n])
        if cand in known:
            return cand
    return None


def edges(known):
    out = {m: set() for m in known}
    pattern = re.compile(r"\b((?:crate|super|self)(?:::\w+)+)")
    for m, path in known.items():
        text = strip_tests(open(path).read())
        # `use super::{a, b}` and `use crate::x::{y, z}` name several modules.
        for group in re.finditer(r"\b((?:crate|super)(?:::\w+)*)::\{([^}]*)\}", text):
            for item in group.group(2).split(","):
                item = item.strip().split("::")[0].split(" ")[0]
                if item and item != "self":
                    target = resolve(m, group.group(1).split("::") + [item], known)
                    if target and target != m:
                        out[m].add(target)
        for hit in pattern.finditer(text):
            target = resolve(m, hit.group(1).split("::"), known)
            if target is not None and target != m:
                out[m].add(target)
    return out


def circles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return found


# Layers, top down: a module may use its own layer and those below. The command line starts
# the front ends; the front ends (the TUI, recordings, benchmarks) read the engine; the engine
# (everything else) knows none of them.
LAYERS = [{"cli", "main"}, {"tui", "record", "bench"}]


def layer(m):
    """0 for the command line, 1 for the front ends, 2 for the engine."""
    for i, names in enumerate(LAYERS):
        if m[:1] and m[0] in names:
            return i
    return len(LAYERS)


def name(m):
    return "::".join(m) or "crate"


def main():
    known = modules()
    graph = {m: {t for t in ts if t != ()} for m, ts in edges(known).items()}
    if "--edges" in sys.argv:
        for m in sorted(graph):
            print(f"{name(m)} -> {', '.join(name(t) for t in sorted(graph[m]))}")
    upward = [(m, t) for m, ts in graph.items() for t in ts if layer(t) < layer(m)]
    # A child reading its parent's items (`super::x`) is how a module is split into files, and
    # the parent naming its children is its structure: neither makes a circle.
    found = circles({m: {t for t in ts if m[: len(t)] != t and t[: len(m)] != m} for m, ts in graph.items()})
    front = [(m, t) for m, ts in graph.items() for t in ts if m[:1] == ("cli",) and t[:1] == ("tui",) and t != ("tui",)]
    for m, t in front:
        print("cli reaches into the tui:", name(m), "->", name(t))
    for c in found:
        print("circle:", " ⇄ ".join(name(m) for m in c))
    for m, t in upward:
        print("upward:", name(m), "->", name(t))
    print(f"{len(known)} modules, {sum(len(t) for t in graph.values())} imports, {len(found)} circles, {len(upward)} upward")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
