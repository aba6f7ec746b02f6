#!/usr/bin/env python3
"""Writes the Hugging Face reference encodings of the tokenizer test set.

Runs where Hugging Face `tokenizers` is installed (the GPU machine). For every file in
tests/fixtures/tokenizer/texts/ and every tokenizer.json given, it records the ids that
`tokenizers` produces, and the SHA-256 of what `tokenizers` decodes them back to. Files whose
name starts with "edge_" are also encoded line by line (split on b"\\n"), so a mismatch points
at one short line.

Input bytes are decoded with errors="replace" before encoding (one U+FFFD per maximal
ill-formed subsequence): Serpent's documented behaviour for invalid UTF-8, which only
matters for edge_invalid_utf8.bin.

Usage (from the repository root):
  python3 tools/make_tokenizer_refs.py ../shared/data/tokenizers/gpt-neox-20b/tokenizer.json \\
      ../shared/data/tokenizers/gpt2/tokenizer.json
Output: tests/fixtures/tokenizer/refs_<name>.json.gz, <name> being the folder that holds the
tokenizer.json (gpt-neox-20b, gpt2). The output is deterministic (gzip mtime 0).
"""
import argparse
import gzip
import hashlib
import json
import os
import unicodedata

import tokenizers
from tokenizers import Tokenizer


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_dir = os.path.join(here, "..", "tests", "data", "tokenizer")
    ap = argparse.ArgumentParser()
    ap.add_argument("tokenizer_json", nargs="+", help="tokenizer.json files")
    ap.add_argument("--texts", default=os.path.join(default_dir, "texts"))
    ap.add_argument("--out", default=default_dir)
    args = ap.parse_args()

    names = sorted(os.listdir(args.texts))
    raw = {}
    for name in names:
        with open(os.path.join(args.texts, name), "rb") as f:
            raw[name] = f.read()

    for path in args.tokenizer_json:
        tok = Tokenizer.from_file(path)
        with open(path, "rb") as f:
            tok_sha = sha256(f.read())
        label = os.path.basename(os.path.dirname(os.path.abspath(path)))
        entries = []
        for name in names:
            text = raw[name].decode("utf-8", errors="replace")
            ids = tok.encode(text, add_special_tokens=False).ids
            decoded = tok.decode(ids, skip_special_tokens=False)
            entry = {
                "name": name,
                "sha256": sha256(raw[name]),
                "ids": ids,
                "decoded_sha256": sha256(decoded.encode("utf-8")),
            }
            if name.startswith("edge_"):
                entry["lines"] = [
                    tok.encode(line.decode("utf-8", errors="replace"), add_special_tokens=False).ids
                    for line in raw[name].split(b"\n")
                ]
            entries.append(entry)
        doc = {
            "tokenizer": label,
            "tokenizer_json_sha256": tok_sha,
            "tokenizers_version": tokenizers.__version__,
            "python_unicodedata_version": unicodedata.unidata_version,
            "encode_call": "Tokenizer.from_file(path).encode(text, add_special_tokens=False).ids",
            "decode_call": "Tokenizer.decode(ids, skip_special_tokens=False)",
            "texts": entries,
        }
        out = os.path.join(args.out, "refs_%s.json.gz" % label)
        body = json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
        with open(out, "wb") as f:
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
                gz.write(body)
        ntok = sum(len(e["ids"]) for e in entries)
        print("%s: %d texts, %d tokens -> %s (%d bytes)" % (label, len(entries), ntok, out,
                                                           os.path.getsize(out)))


if __name__ == "__main__":
    main()
