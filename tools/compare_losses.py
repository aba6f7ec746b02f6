#!/usr/bin/env python3
"""Compares the per-step losses of two or more serpent runs (their metrics.jsonl files).

Usage: compare_losses.py REFERENCE.jsonl OTHER.jsonl [OTHER.jsonl ...] [--tol 1e-3] [--steps A:B]
Prints the largest relative difference of each OTHER against REFERENCE over the steps both logged
(optionally only steps A..B inclusive) and exits 1 when one exceeds --tol or no steps are shared.
"""
import argparse
import json
import sys


def losses(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                if r.get("loss") is not None:
                    out[r["step"]] = r["loss"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("reference")
    ap.add_argument("others", nargs="+")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--steps", default=None, help="A:B, inclusive")
    a = ap.parse_args()
    ref = losses(a.reference)
    lo, hi = (int(x) for x in a.steps.split(":")) if a.steps else (min(ref, default=0), max(ref, default=0))
    ok = True
    for other in a.others:
        o = losses(other)
        shared = sorted(s for s in ref if s in o and lo <= s <= hi)
        if not shared:
            print(f"{other}: no steps in common with {a.reference} in {lo}..{hi}")
            ok = False
            continue
        worst = max(shared, key=lambda s: abs(o[s] - ref[s]) / abs(ref[s]))
        rel = abs(o[worst] - ref[worst]) / abs(ref[worst])
        verdict = "ok" if rel <= a.tol else "EXCEEDS"
        print(f"{other} vs {a.reference}: steps {shared[0]}..{shared[-1]} ({len(shared)}), "
              f"max relative difference {rel:.3e} at step {worst} ({o[worst]:.6f} vs {ref[worst]:.6f}), "
              f"first {o[shared[0]]:.6f} vs {ref[shared[0]]:.6f}, last {o[shared[-1]]:.6f} vs {ref[shared[-1]]:.6f}: "
              f"{verdict} (tol {a.tol:g})")
        ok = ok and rel <= a.tol
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
