#!/usr/bin/env bash
# Serpent in one command: installs missing dependencies, builds the serpent binary (Release),
# prepares the bundled Austen corpus with the byte tokenizer, trains configs/tiny.yaml (on the GPU
# when nvidia-smi sees one, else on the cpu), evaluates the model on the whole validation split,
# prints a sample and the run folder.
#
# Usage: scripts/quickstart.sh   (BUILD_DIR overrides the build folder, default build)
# Run it again and it reuses the finished run (training resumes with --resume auto); delete
# runs/tiny to train from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
source scripts/deps.sh
serpent_install_deps

BUILD_DIR=${BUILD_DIR:-build}
RUN_DIR=runs/tiny
DATA=data/prepared/austen-byte  # data.path in configs/tiny.yaml

gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then gpu=1; fi

# Only the serpent binary; without a GPU the CUDA backend is not compiled at all.
cmake_args=(-DCMAKE_BUILD_TYPE=Release -DSERPENT_TESTS=OFF)
[ "$gpu" = 1 ] || cmake_args+=(-DSERPENT_CUDA=OFF)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] && command -v ninja >/dev/null; then cmake_args+=(-G Ninja); fi
echo "== building $BUILD_DIR/serpent" >&2
cmake -S . -B "$BUILD_DIR" "${cmake_args[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target serpent
SERPENT="$BUILD_DIR/serpent"

echo "== preparing data/corpus/austen.jsonl.gz into $DATA" >&2
"$SERPENT" prepare --tokenizer byte --input data/corpus/austen.jsonl.gz --out "$DATA" --val-fraction 0.02 \
  --overwrite --quiet

train_args=()
if [ "$gpu" = 1 ]; then
  train_args+=(--set train.device=cuda)
  echo "== training configs/tiny.yaml on the GPU" >&2
else
  echo "== training configs/tiny.yaml on the cpu ($(nproc) cores)" >&2
fi
"$SERPENT" train configs/tiny.yaml "${train_args[@]}" --resume auto

CKPT=$(ls -1 "$RUN_DIR"/checkpoints/step_*.h5 | tail -n 1)
echo "== evaluating $CKPT on the whole validation split" >&2
"$SERPENT" eval --checkpoint "$CKPT"

echo "== a sample" >&2
"$SERPENT" generate --checkpoint "$CKPT" --prompt "It was" --max-new-tokens 400 --temperature 0.8 --top-k 40 \
  --seed 1
echo
echo "run folder: $RUN_DIR (config.yaml, metrics.jsonl, train.log, loss.svg, checkpoints/)"
echo "quickstart done in $((SECONDS / 60))m$(printf '%02d' $((SECONDS % 60)))s"
