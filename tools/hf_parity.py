#!/usr/bin/env python3
"""Parity of serpent's Mamba against Hugging Face transformers, run on the GPU machine.

What it checks, and its tolerances:
  1. A byte-level model trained a few AdamW steps by serpent (build/hf_parity_tool train) is exported
     with `serpent export-hf` and loaded with transformers' MambaForCausalLM in fp32 on the CPU (the
     reference's sequential path: no CUDA kernels involved). On held-out tokens:
       logits            ||ours - hf|| / ||hf||                     <= 1e-4
       loss              |ours - hf|                                <= 1e-5
       every gradient    ||ours - hf|| / ||hf|| per parameter       <= 1e-3   (our CPU backward vs torch autograd)
       perplexity        |ours - hf| / hf                           <= 1e-4
     "ours" comes from build/hf_parity_tool dump (our CPU forward/backward, f32); the perplexity
     from `serpent eval` on the same tokens (see serpent_eval_perplexity). The CUDA forward and
     backward (dump --device cuda:0) are held to the same logits, loss and gradient tolerances.
  2. Round trips, each compared tensor by tensor, bit for bit:
       transformers random model, save_pretrained (fp32, one file) -> import-hf -> export-hf
       the same in bf16 and in fp16 (exported f32 == the file's values widened)
       the same saved in shards with model.safetensors.index.json
       our trained checkpoint -> export-hf -> import-hf -> the same /model tensors (h5py)
     and the re-exported fp32 folder gives the same logits in transformers as the original model.

Usage (from the repository root; builds build/serpent and build/hf_parity_tool when missing):
  python3 tools/hf_parity.py [--build-dir build] [--work /tmp/serpent_hf_parity] [--out hf_parity_results]
Writes OUT.json and OUT.md (results with date, commit, versions) and exits non-zero if a check fails.
"""

import argparse
import copy
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the GPU machine has no network; never try to fetch kernels
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.numpy import load_file as load_np  # noqa: E402
from safetensors.numpy import save_file as save_np  # noqa: E402
from safetensors.torch import load_file as load_torch  # noqa: E402
from transformers import MambaConfig, MambaForCausalLM  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TEXT = REPO / "tests" / "data" / "pride_and_prejudice_ch1.txt"
TRAIN_BYTES = 9000  # the model trains on the text's first 9000 bytes; parity runs on bytes after them
BATCH, SEQ = 4, 64


class Checks:
    def __init__(self):
        self.rows = []

    def add(self, name, value, tol, detail=""):
        ok = bool(value <= tol)
        self.rows.append({"check": name, "value": float(value), "tolerance": tol, "passed": ok, "detail": detail})
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {value:.3e} (tolerance {tol:g}) {detail}", flush=True)

    def flag(self, name, ok, detail=""):
        self.rows.append({"check": name, "value": None, "tolerance": None, "passed": bool(ok), "detail": detail})
        print(f"{'PASS' if ok else 'FAIL'}  {name} {detail}", flush=True)

    def all_passed(self):
        return all(r["passed"] for r in self.rows)


def run(cmd):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    result = subprocess.run([str(c) for c in cmd], text=True, capture_output=True)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(str(cmd[0])).name} {cmd[1]} exited {result.returncode}: {result.stderr.strip()}")
    return result


def ensure_built(build_dir):
    serpent, tool = build_dir / "serpent", build_dir / "hf_parity_tool"
    if not (serpent.exists() and tool.exists()):
        generator = [] if (build_dir / "CMakeCache.txt").exists() else ["-G", "Ninja"]
        subprocess.run(["cmake", "-S", str(REPO), "-B", str(build_dir), *generator, "-DCMAKE_BUILD_TYPE=Release"],
                       check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "-j", "--target", "serpent", "hf_parity_tool"], check=True)
    return serpent, tool


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def load_hf(folder):
    model = MambaForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.to("cpu").eval()
    return model


def serpent_eval_perplexity(serpent, checkpoint, rows, work):
    """Perplexity from `serpent eval` on exactly `rows` (B, L+1 token ids). eval reads a shard as one
    stream cut into windows (the first token of a shard is never a target), so each row goes into a
    shard of its own (llm.c format: magic 20240520, version 1, uint16 tokens) and the window is L:
    every row is then one window of L next-token predictions, as transformers scores it."""
    data = work / "eval_data"
    data.mkdir(exist_ok=True)
    rows = np.asarray(rows, np.uint16)
    for i, row in enumerate(rows):
        header = np.zeros(256, np.int32)
        header[:3] = [20240520, 1, row.size]
        with open(data / f"val_{i:06d}.bin", "wb") as f:
            f.write(header.tobytes())
            f.write(row.tobytes())
    out = run([serpent, "eval", "--checkpoint", checkpoint, "--data", data, "--json", "--seq-len", rows.shape[1] - 1,
               "--device", "cpu"])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    expected = rows.shape[0] * (rows.shape[1] - 1)
    if result.get("tokens") != expected:
        raise RuntimeError(f"serpent eval scored {result.get('tokens')} tokens, expected {expected}: {out.stdout}")
    for key in ("val_ppl", "perplexity", "ppl"):
        if key in result:
            return float(result[key])
    raise RuntimeError(f"serpent eval --json printed no perplexity: {out.stdout}")


def tensors_of(folder):
    """Every tensor of a Hugging Face folder (one file or shards), as torch tensors in the file's dtype."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else ["model.safetensors"]
    out = {}
    for f in files:
        out.update(load_torch(str(folder / f)))
    return out


def compare_folders(checks, name, original, exported):
    """Every tensor of `exported` (f32) equals the original's, widened to f32 where it was bf16 or fp16
    (widening is exact, so the comparison is bit for bit)."""
    a, b = tensors_of(original), tensors_of(exported)
    head = a.pop("lm_head.weight", None)
    if head is not None:
        checks.flag(f"{name}: original lm_head equals the embedding", torch.equal(head, a["backbone.embeddings.weight"]))
    mismatched = [k for k in a if k not in b or not torch.equal(a[k].float(), b[k])]
    extra = sorted(set(b) - set(a))
    checks.flag(f"{name}: identical tensors", not mismatched and not extra,
                f"({len(a)} tensors, source {sorted({str(v.dtype) for v in a.values()})}; "
                f"mismatched {mismatched[:3]}, extra {extra[:3]})")
    dtypes = {str(v.dtype) for v in b.values()}
    checks.flag(f"{name}: exported as float32", dtypes == {"torch.float32"}, f"({sorted(dtypes)})")


def trained_model_parity(checks, serpent, tool, work):
    """Part 1: a model trained by serpent against transformers. Returns notes for the results."""
    ckpt = work / "trained.h5"
    run([tool, "train", "--text", TEXT, "--out", ckpt, "--train-bytes", TRAIN_BYTES, "--steps", 8,
         "--d-model", 64, "--n-layer", 2, "--batch", BATCH, "--seq-len", SEQ])
    export = work / "hf_trained"
    run([serpent, "export-hf", "--checkpoint", ckpt, "--out", export])
    text = TEXT.read_bytes()
    held_out = np.frombuffer(text[TRAIN_BYTES:TRAIN_BYTES + BATCH * (SEQ + 1)], np.uint8).astype(np.int64)
    rows = held_out.reshape(BATCH, SEQ + 1)
    save_np({"tokens": rows}, str(work / "tokens.safetensors"))
    run([tool, "dump", "--checkpoint", ckpt, "--tokens", work / "tokens.safetensors", "--out", work / "ours.safetensors"])
    ours = load_np(str(work / "ours.safetensors"))

    model = load_hf(export)
    checks.flag("transformers ties lm_head to the exported embedding",
                model.lm_head.weight.data_ptr() == model.backbone.embeddings.weight.data_ptr())
    ids = torch.from_numpy(rows)
    logits = model(input_ids=ids[:, :-1], use_cache=False).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
    loss.backward()
    hf_native = model(input_ids=ids, labels=ids, use_cache=False).loss.item()  # transformers' own shifted loss

    theirs = logits.detach().numpy()
    checks.add("logits, relative", rel(ours["logits"], theirs), 1e-4,
               f"(shape {tuple(logits.shape)}, max |diff| {np.abs(ours['logits'] - theirs).max():.2e})")
    checks.add("loss, absolute", abs(float(ours["loss"]) - loss.item()), 1e-5,
               f"(ours {float(ours['loss']):.8f}, transformers {loss.item():.8f}, its labels= loss {hf_native:.8f})")
    worst = 0.0
    for name, p in model.named_parameters():
        if p.grad is None or "grad." + name not in ours:
            checks.flag(f"gradient {name}", False, "(missing on one side)")
            continue
        err = rel(ours["grad." + name], p.grad.numpy())
        worst = max(worst, err)
        checks.add(f"gradient {name}", err, 1e-3)
    hf_names = dict(model.named_parameters())
    unmatched = sorted(k[5:] for k in ours if k.startswith("grad.") and k[5:] not in hf_names)
    checks.flag("every serpent parameter has a transformers gradient", not unmatched, f"(unmatched: {unmatched})")
    # The same comparison for our CUDA forward and backward (f32), where a GPU is present.
    if torch.cuda.is_available():
        run([tool, "dump", "--checkpoint", ckpt, "--tokens", work / "tokens.safetensors", "--out",
             work / "ours_cuda.safetensors", "--device", "cuda:0"])
        cuda = load_np(str(work / "ours_cuda.safetensors"))
        checks.add("CUDA logits, relative", rel(cuda["logits"], theirs), 1e-4)
        checks.add("CUDA loss, absolute", abs(float(cuda["loss"]) - loss.item()), 1e-5,
                   f"(ours on cuda:0 {float(cuda['loss']):.8f}, transformers {loss.item():.8f})")
        for name, p in model.named_parameters():
            if p.grad is not None and "grad." + name in cuda:
                checks.add(f"CUDA gradient {name}", rel(cuda["grad." + name], p.grad.numpy()), 1e-3)
    hf_ppl = math.exp(loss.item())
    our_ppl = serpent_eval_perplexity(serpent, ckpt, rows, work)
    checks.add("perplexity, relative", abs(our_ppl - hf_ppl) / hf_ppl, 1e-4,
               f"(serpent eval {our_ppl:.6f}, transformers {hf_ppl:.6f})")

    # Our checkpoint -> HF -> our checkpoint.
    back = work / "reimported.h5"
    run([serpent, "import-hf", "--in", export, "--out", back])
    with h5py.File(ckpt, "r") as a, h5py.File(back, "r") as b:
        names = list(a["model"].keys())
        same = sorted(names) == sorted(b["model"].keys()) and all(
            np.array_equal(a["model"][n][()], b["model"][n][()]) for n in names)
    checks.flag("serpent checkpoint -> export-hf -> import-hf: identical /model", same, f"({len(names)} tensors)")
    return {"worst_gradient_relative_error": worst}


def transformers_round_trips(checks, serpent, work):
    """Part 2: models initialized by transformers through import-hf and export-hf."""
    cfg = MambaConfig(vocab_size=250, hidden_size=48, state_size=8, num_hidden_layers=2, time_step_rank=5,
                      use_bias=False, use_conv_bias=True, tie_word_embeddings=True)
    ref = MambaForCausalLM(cfg).eval()
    with torch.no_grad():
        for p in ref.parameters():  # make the constant-initialized tensors (A_log, D, conv bias, norms) random too
            p.add_(0.01 * torch.randn_like(p))
    probe_ids = torch.randint(0, 250, (2, 17))
    ref_logits = ref(input_ids=probe_ids, use_cache=False).logits.detach()
    for label, dtype, kwargs in [
        ("fp32 single file", torch.float32, {}),
        ("bf16", torch.bfloat16, {}),
        ("fp16", torch.float16, {}),
        ("fp32 shards + index", torch.float32, {"max_shard_size": "20KB"}),
    ]:
        src = work / f"hf_{label.split()[0]}_{len(kwargs)}"
        try:
            copy.deepcopy(ref).to(dtype).save_pretrained(src, **kwargs)
            if kwargs:
                checks.flag(f"{label}: transformers wrote an index", (src / "model.safetensors.index.json").exists())
            ckpt_rt = work / f"{src.name}.h5"
            run([serpent, "import-hf", "--in", src, "--out", ckpt_rt])
            out = work / f"{src.name}_reexported"
            run([serpent, "export-hf", "--checkpoint", ckpt_rt, "--out", out, "--tokenizer", "none"])
            compare_folders(checks, f"round trip {label}", src, out)
            if dtype == torch.float32 and not kwargs:
                again = load_hf(out)
                same_logits = torch.equal(again(input_ids=probe_ids, use_cache=False).logits, ref_logits)
                checks.flag("round trip fp32: transformers logits of the re-export equal the original's", same_logits)
        except Exception as e:  # record the failure and go on, so that the results cover every check
            checks.flag(f"round trip {label}", False, f"(error: {e})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=str(REPO / "build"))
    ap.add_argument("--work", default="/tmp/serpent_hf_parity")
    ap.add_argument("--out", default="hf_parity_results", help="writes OUT.json and OUT.md")
    args = ap.parse_args()
    serpent, tool = ensure_built(Path(args.build_dir).resolve())
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    checks = Checks()
    torch.manual_seed(0)
    notes = {}
    try:
        notes = trained_model_parity(checks, serpent, tool, work)
    except Exception as e:  # record the failure and go on to the round trips
        checks.flag("serpent-trained model against transformers", False, f"(error: {e})")
    transformers_round_trips(checks, serpent, work)

    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], text=True, capture_output=True).stdout.strip()
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "commit": commit,
            "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
            "host": platform.node(), "model": "byte-level d_model 64, 2 layers, 8 AdamW steps; parity on 4 x 64 "
            "held-out tokens; transformers in fp32 on the CPU", **notes}
    out_json, out_md = Path(args.out + ".json"), Path(args.out + ".md")
    out_json.write_text(json.dumps({"meta": meta, "checks": checks.rows}, indent=2) + "\n")
    lines = [f"Parity with transformers: {meta['date']}, commit {commit[:12]}, torch {meta['torch']}, "
             f"transformers {meta['transformers']}. {meta['model']}. Command: `python3 tools/hf_parity.py`.", "",
             "| check | value | tolerance | result |", "|---|---|---|---|"]
    for r in checks.rows:
        value = "" if r["value"] is None else f"{r['value']:.2e}"
        tol = "" if r["tolerance"] is None else f"{r['tolerance']:g}"
        lines.append(f"| {r['check']} {r['detail']} | {value} | {tol} | {'pass' if r['passed'] else 'FAIL'} |")
    out_md.write_text("\n".join(lines) + "\n")
    print(f"wrote {out_json} and {out_md}: {'all checks passed' if checks.all_passed() else 'SOME CHECKS FAILED'}")
    return 0 if checks.all_passed() else 1


if __name__ == "__main__":
    sys.exit(main())
