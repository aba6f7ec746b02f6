#!/usr/bin/env python3
"""Builds data/corpus/austen.jsonl.gz, the quickstart corpus, from the six Austen novels in the
shared data folder: one JSON object {"text", "source"} per chapter (the front matter goes with the
first chapter), so that `serpent prepare --val-fraction F` can hold out whole chapters.

Usage: python3 tools/make_corpus.py [SRC_DIR] [OUT]
  (defaults: /work/shared/data/corpus/austen, data/corpus/austen.jsonl.gz)
The output is byte-for-byte reproducible (gzip header without a time stamp or file name).
"""
import gzip
import io
import json
import os
import re
import sys

HEADING = re.compile(r"^(CHAPTER|Chapter)\s+([IVXLC]+|\d+)\.?\s*$")


def chapters(text):
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if HEADING.match(line)]
    if not starts:
        return [text]
    starts[0] = 0  # the title and front matter open the first chapter
    bounds = starts + [len(lines)]
    return ["\n".join(lines[a:b]).strip("\n") + "\n" for a, b in zip(bounds, bounds[1:])]


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/corpus/austen"
    out = sys.argv[2] if len(sys.argv) > 2 else "data/corpus/austen.jsonl.gz"
    buf = io.BytesIO()
    count = 0
    for name in sorted(os.listdir(src)):
        if not name.endswith(".txt"):
            continue
        with open(os.path.join(src, name), encoding="utf-8") as f:
            text = f.read()
        for i, chapter in enumerate(chapters(text)):
            record = {"text": chapter, "source": f"austen/{name}#chapter-{i + 1}"}
            buf.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
            count += 1
    with open(out, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            gz.write(buf.getvalue())
    print(f"{out}: {count} chapters, {buf.tell()} bytes of JSONL, {os.path.getsize(out)} bytes compressed")


if __name__ == "__main__":
    main()
