#!/usr/bin/env python3
"""Reads a run folder's TensorBoard event files with the tensorboard package (on the GPU machine,
whose image has it) and checks them against the run's metrics.jsonl: every tag TensorBoard finds,
its points, and that train/loss, train/lr, train/grad_norm and val/loss equal the metrics (as
float32). Prints a table for docs/TRAINING.md; exits 1 on a mismatch.

Usage: python3 tools/tensorboard_readback.py RUN_FOLDER
"""
import json
import struct
import sys

from tensorboard.backend.event_processing import event_accumulator


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def main():
    run = sys.argv[1]
    acc = event_accumulator.EventAccumulator(run, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    tags = sorted(acc.Tags()["scalars"])
    metrics = [json.loads(line) for line in open(f"{run}/metrics.jsonl")]
    print(f"tensorboard read {len(tags)} scalar tags from {run}:")
    for tag in tags:
        points = acc.Scalars(tag)
        print(f"  {tag:24s} {len(points):4d} points, step {points[0].step}..{points[-1].step}, "
              f"last {points[-1].value:.6g}")
    bad = 0
    for tag, key in [("train/loss", "loss"), ("train/lr", "lr"), ("train/grad_norm", "grad_norm"),
                     ("val/loss", "val_loss")]:
        got = {p.step: p.value for p in acc.Scalars(tag)} if tag in tags else {}
        for m in metrics:
            if m.get(key) is None:
                continue
            if got.get(m["step"]) != f32(m[key]):
                bad += 1
                print(f"  MISMATCH {tag} step {m['step']}: tensorboard {got.get(m['step'])}, metrics {m[key]}")
    print("every point matches metrics.jsonl" if not bad else f"{bad} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
