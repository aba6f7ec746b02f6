#!/usr/bin/env bash
# A real run on one GPU: a mamba-130m-shaped model trained for 2000 steps on the
# State of the Union addresses and the Linux kernel documentation, tokenized with GPT-NeoX-20B,
# plus the first steps of the same run on the CPU path for comparison.
# Expects the corpora under .carry/ (sotu/ and linux-doc.jsonl.gz: the linux-doc text is GPL-2 and
# is not shipped in the repository) and a build in build-gpu (tools/device_run.sh makes it).
# Usage: tools/real_run.sh [steps]   (logs and the run's metrics go to $OUT)
set -uo pipefail
export NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp/serpent-out}
STEPS=${1:-2000}
S=./build-gpu/serpent
DATA=/tmp/neox
$S prepare --tokenizer data/tokenizers/gpt-neox-20b/tokenizer.json --input .carry/sotu .carry/linux-doc.jsonl.gz \
  --out $DATA --val-fraction 0.02 --quiet --overwrite > "$OUT/prepare.log" 2>&1
echo "prepare: status $?"; tail -3 "$OUT/prepare.log"
common=(--set data.path=$DATA train.max_tokens=0 data.micro_batch_size=8 data.global_batch_tokens=16384
        optim.lr=1e-3 optim.warmup_steps=200 eval.every=250 eval.batches=40 checkpoint.every=1000 train.log_every=25)
# The CPU path: the first two steps of the same run (same data order and seed), f32.
$S train configs/mamba-130m.yaml "${common[@]}" train.name=cpu-first-steps train.device=cpu train.dtype=f32 \
  train.max_steps=$STEPS train.log_every=1 --stop-after 2 > "$OUT/cpu_first_steps.log" 2>&1
echo "cpu first steps: status $?"; cp runs/cpu-first-steps/metrics.jsonl "$OUT/cpu_first_steps_metrics.jsonl"
# The GPU run, bf16 mixed precision; the first two steps are logged individually.
$S train configs/mamba-130m.yaml "${common[@]}" train.name=gpu-first-steps train.max_steps=$STEPS train.log_every=1 \
  --stop-after 2 > "$OUT/gpu_first_steps.log" 2>&1
echo "gpu first steps: status $?"; cp runs/gpu-first-steps/metrics.jsonl "$OUT/gpu_first_steps_metrics.jsonl"
start=$(date +%s)
$S train configs/mamba-130m.yaml "${common[@]}" train.name=real-run-130m train.max_steps=$STEPS > "$OUT/real_run.log" 2>&1
echo "real run: status $?, $(( $(date +%s) - start )) s"; tail -4 "$OUT/real_run.log"
cp runs/real-run-130m/metrics.jsonl "$OUT/real_run_metrics.jsonl"
cp runs/real-run-130m/*.svg "$OUT/" 2>/dev/null
ckpt=$(ls -t runs/real-run-130m/checkpoints/*.h5 | head -1)
$S eval --checkpoint "$ckpt" --json > "$OUT/real_run_eval.json" 2>&1; echo "eval: $(cat "$OUT/real_run_eval.json")"
echo "first steps, cpu:"; head -2 "$OUT/cpu_first_steps_metrics.jsonl"
echo "first steps, gpu:"; head -2 "$OUT/gpu_first_steps_metrics.jsonl"
