#!/usr/bin/env bash
# One session on the GPU machine: build for sm_90, run the CUDA tests, then the stages named on
# the command line. Logs go to $OUT. Usage: tools/device_run.sh [tokenizer-refs] [bench] [dist] ...
set -uo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
OUT=${OUT:-/tmp/serpent-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
git rev-parse HEAD > "$OUT/commit.txt" 2>/dev/null || true
# NCCL from the toolkit, else from the pip wheel PyTorch uses.
if [ ! -f /usr/local/cuda/include/nccl.h ] && [ -z "${NCCL_HOME:-}" ]; then
  NCCL_HOME=$(python3 -c 'import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__) if nvidia.nccl.__file__ else list(nvidia.nccl.__path__)[0])' 2>/dev/null) && export NCCL_HOME
  echo "NCCL_HOME=${NCCL_HOME:-none}"
fi
start=$(date +%s)
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 > "$OUT/build.log" 2>&1 &&
  cmake --build build-gpu -j "$(nproc)" >> "$OUT/build.log" 2>&1
status=$?
echo "build: status $status, $(( $(date +%s) - start )) s; $(grep -E 'serpent: (NCCL|MPI|CUDA)' "$OUT/build.log" | tr '\n' ' ')"
if [ $status -ne 0 ]; then grep -E "error|Error" "$OUT/build.log" | head -40; exit 1; fi

for stage in "${@:-}"; do
  case "$stage" in
    cuda-tests)
      ./build-gpu/serpent_tests --gtest_filter='*Cuda*' > "$OUT/cuda_tests.log" 2>&1
      echo "cuda tests: status $?"; grep -E "^\[  (PASSED|FAILED|SKIPPED) " "$OUT/cuda_tests.log"; grep -B2 -A6 "Failure" "$OUT/cuda_tests.log" | head -60 ;;
    all-tests)
      (cd build-gpu && ctest -j 8 --output-on-failure > "$OUT/ctest.log" 2>&1); echo "ctest: status $?"; tail -5 "$OUT/ctest.log" ;;
    tokenizer-refs)
      python3 tools/make_tokenizer_refs.py data/tokenizers/gpt-neox-20b/tokenizer.json data/tokenizers/gpt2/tokenizer.json \
        --out "$OUT" > "$OUT/tokenizer_refs.log" 2>&1
      echo "tokenizer refs: status $?"; tail -3 "$OUT/tokenizer_refs.log" ;;
    scan-bench)
      for shape in 8,1536,2048,16 16,1536,2048,16 2,1536,8192,16 8,4096,2048,16; do
        ./build-gpu/serpent bench scan --shape $shape 2>&1 | tee -a "$OUT/scan_bench.log"
      done ;;
    model-bench)
      for args in "--config configs/mamba-130m.yaml --batch 8 --seq-len 2048 --breakdown" \
                  "--config configs/mamba-130m.yaml --batch 16 --seq-len 2048" \
                  "--config configs/mamba-130m.yaml --batch 2 --seq-len 8192" \
                  "--config configs/mamba-370m.yaml --batch 8 --seq-len 2048" \
                  "--config configs/mamba-1.4b.yaml --batch 8 --seq-len 2048"; do
        echo "== serpent bench $args" | tee -a "$OUT/model_bench.log"
        ./build-gpu/serpent bench $args --steps 10 --warmup 2 2>&1 | tee -a "$OUT/model_bench.log"
      done ;;
    forward-bench)
      for args in "--config configs/mamba-130m.yaml --batch 16 --seq-len 2048" \
                  "--config configs/mamba-1.4b.yaml --batch 8 --seq-len 2048"; do
        echo "== serpent bench --forward $args" | tee -a "$OUT/forward_bench.log"
        ./build-gpu/serpent bench --forward $args --steps 10 --warmup 2 2>&1 | tee -a "$OUT/forward_bench.log"
      done ;;
    scan-profile)
      # Nsight Compute on the scan's forward and backward kernels at the 130m shape (hardware
      # counters: throughput, occupancy, warp stalls), clocks as found.
      ncu --clock-control none --kernel-name regex:'chunk_(output|backward)_kernel' --launch-skip 2 --launch-count 2 \
        --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
        --section SchedulerStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
        ./build-gpu/serpent bench scan --shape 8,1536,2048,16 --steps 1 --warmup 1 > "$OUT/scan_profile.txt" 2>&1
      echo "scan profile: status $?"; grep -E "Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Compute \(SM\) Throughput|Memory Throughput|Issue Slots Busy|No Eligible|Block Limit" "$OUT/scan_profile.txt" ;;
    ops-profile)
      # Nsight Compute on the bandwidth-bound kernels of two mamba-130m 8 x 2048 training steps
      # (norm, conv, embedding, AdamW, partial sums): duration and DRAM throughput per kernel,
      # averaged over its launches, to say which of them is far from the HBM bound and why.
      ncu --clock-control none --print-summary per-kernel --print-kernel-base demangled \
        --kernel-name regex:'forward_kernel|backward_kernel|sum_partials|segment_sum|keys_kernel|adamw|sum_squares|norm_kernel' \
        --launch-count 1500 --section SpeedOfLight --section LaunchStats --section Occupancy \
        ./build-gpu/serpent bench --config configs/mamba-130m.yaml --batch 8 --seq-len 2048 --steps 1 --warmup 1 \
        > "$OUT/ops_profile.txt" 2>&1
      echo "ops profile: status $?"; grep -cE "Duration" "$OUT/ops_profile.txt" ;;
    scan-variant)
      # A/B of the scan kernel: each patch of SCAN_PATCHES (space-separated paths) applied in turn
      # to kernels/cuda/selective_scan.cu, the binary rebuilt and scan-bench rerun into
      # scan_variant.log; then the source and the binary restored.
      f=kernels/cuda/selective_scan.cu && cp $f /tmp/scan_source.cu
      for p in ${SCAN_PATCHES:?set SCAN_PATCHES}; do
        cp /tmp/scan_source.cu $f && patch -s -p0 < "$p" || { echo "variant $p: patch failed"; continue; }
        echo "== variant $p" | tee -a "$OUT/scan_variant.log"
        cmake --build build-gpu -j "$(nproc)" --target serpent >> "$OUT/build.log" 2>&1 || echo "variant build failed"
        for shape in 8,1536,2048,16 16,1536,2048,16 2,1536,8192,16 8,4096,2048,16; do
          ./build-gpu/serpent bench scan --shape $shape 2>&1 | tee -a "$OUT/scan_variant.log"
        done
      done
      cp /tmp/scan_source.cu $f && cmake --build build-gpu -j "$(nproc)" --target serpent >> "$OUT/build.log" 2>&1 ;;
    recipe-run)
      # The fast-step and memory issues' check run: mamba-130m for 400 steps on SOTU + linux-doc
      # (corpora carried in .carry/, as for tools/real_run.sh), then `serpent eval` of the step-400
      # checkpoint over the whole validation split. One run per ';'-separated entry of
      # RECIPE_VARIANTS (extra --set overrides; an empty entry is the default recipe).
      rr=/tmp/serpent-recipe && mkdir -p $rr
      ./build-gpu/serpent prepare --tokenizer data/tokenizers/gpt-neox-20b/tokenizer.json \
        --input .carry/sotu .carry/linux-doc.jsonl.gz --out $rr/data --val-fraction 0.02 --seed 0 --quiet --overwrite \
        > "$OUT/recipe_prepare.log" 2>&1 || { echo "recipe prepare failed"; tail -3 "$OUT/recipe_prepare.log"; }
      IFS=';' read -ra variants <<< "${RECIPE_VARIANTS:-}"
      [ ${#variants[@]} -eq 0 ] && variants=("")
      for i in "${!variants[@]}"; do
        v=${variants[$i]}; name=recipe-$i
        extra=(); for kv in $v; do extra+=(--set "$kv"); done
        ./build-gpu/serpent train configs/mamba-130m.yaml --set data.path=$rr/data --set log.runs_dir=$rr/runs \
          --set train.name=$name --set data.micro_batch_size=8 --set data.global_batch_tokens=16384 --set optim.lr=1e-3 \
          --set optim.warmup_steps=100 --set train.max_steps=400 --set train.max_tokens=0 --set eval.every=0 \
          --set eval.batches=10 --set checkpoint.every=400 "${extra[@]}" > "$OUT/recipe_train_$i.log" 2>&1
        status=$?
        ckpt=$(ls -t $rr/runs/$name/checkpoints/*.h5 2>/dev/null | head -1)
        ev=$(./build-gpu/serpent eval --checkpoint "$ckpt" --json 2>&1 | tail -1)
        peak=$(python3 -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(max(x.get('peak_memory_gib', 0) for x in r), sum(x.get('tokens_per_s', 0) for x in r[-5:]) / 5)" $rr/runs/$name/metrics.jsonl 2>&1)
        echo "== recipe [$v]: train status $status; eval $ev; peak GiB, tokens/s (last 5 logs): $peak" | tee -a "$OUT/recipe.log"
        cp $rr/runs/$name/metrics.jsonl "$OUT/recipe_metrics_$i.jsonl" 2>/dev/null
      done ;;
    tensorboard)
      # A tiny cpu run with TensorBoard scalars on, stopped and resumed, read back by the
      # tensorboard package (docs/TRAINING.md records the result).
      tb=/tmp/serpent-tb && rm -rf $tb && mkdir -p $tb
      ./build-gpu/serpent prepare --tokenizer byte --input data/corpus/austen.jsonl.gz --out $tb/data --val-fraction 0.02 --quiet
      for extra in "--stop-after 60" "--resume auto"; do
        ./build-gpu/serpent train configs/tiny.yaml --set data.path=$tb/data --set log.runs_dir=$tb/runs \
          --set log.tensorboard=true --set train.max_steps=100 $extra > "$OUT/tensorboard_train.log" 2>&1
      done
      python3 tools/tensorboard_readback.py $tb/runs/tiny 2>&1 | tee "$OUT/tensorboard_readback.txt" ;;
    dist)
      # Data parallelism on one GPU: the NCCL path at world size 1 against the local one (tests),
      # and the cost of the NCCL gradient buckets in a mamba-130m training step (bench).
      ./build-gpu/serpent_tests --gtest_filter='DistTrainCuda.*:GradBuckets.*:ZeroOne.*:DistEnv.*:TcpRendezvous.*' \
        > "$OUT/dist_tests.log" 2>&1
      echo "dist tests: status $?"; grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[       OK \] DistTrainCuda" "$OUT/dist_tests.log"
      grep -B2 -A6 "Failure" "$OUT/dist_tests.log" | head -40
      for dist in "" "--dist local" "--dist nccl"; do
        echo "== serpent bench --config configs/mamba-130m.yaml --batch 8 --seq-len 2048 $dist" | tee -a "$OUT/dist_bench.log"
        ./build-gpu/serpent bench --config configs/mamba-130m.yaml --batch 8 --seq-len 2048 --steps 30 --warmup 3 $dist \
          2>&1 | tee -a "$OUT/dist_bench.log"
      done
      awk '/^== /{d=$NF} /^train step/{t[d]=$6} END{if (t["2048"] > 0) printf "nccl / plain tokens/s: %.4f (local %.4f)\n", t["nccl"]/t["2048"], t["local"]/t["2048"]}' \
        "$OUT/dist_bench.log" | tee -a "$OUT/dist_bench.log" ;;
    hf-parity)
      python3 tools/hf_parity.py --build-dir build-gpu --out "$OUT/hf_parity_results" > "$OUT/hf_parity.log" 2>&1
      echo "hf parity: status $?"; tail -30 "$OUT/hf_parity.log" ;;
    checkpoint-stall)
      # Checkpoint save and load at scale: mamba-1.4b at 8 x 2048 and mamba-2.8b at 4 x 2048 on
      # Austen in GPT-NeoX tokens; N steps (the step times show whether pinning the host buffer in
      # the background slows them), the checkpoint at the last (train.log: the training stall and
      # the background write), then a resume that only loads it (the run is complete) and reports
      # the read-and-load time. One model at a time: a 2.8b checkpoint with optimizer state is
      # ~33 GB of the machine's 64 GB disk.
      ck=/tmp/serpent-ckpt && rm -rf $ck && mkdir -p $ck
      ./build-gpu/serpent prepare --tokenizer data/tokenizers/gpt-neox-20b/tokenizer.json \
        --input data/corpus/austen.jsonl.gz --out $ck/data --val-fraction 0.02 --quiet
      for spec in "1.4b 8 20" "2.8b 4 30"; do
        set -- $spec
        common="--set data.path=$ck/data --set log.runs_dir=$ck/runs --set data.micro_batch_size=$2 \
          --set data.global_batch_tokens=$(( $2 * 2048 )) --set train.max_steps=$3 --set train.max_tokens=0 \
          --set optim.warmup_steps=1 --set eval.batches=1 --set checkpoint.keep_last=1 --set train.log_every=1"
        echo "== mamba-$1 $2 x 2048: train $3 steps" | tee -a "$OUT/checkpoint_stall.log"
        t0=$(date +%s.%N); ./build-gpu/serpent train configs/mamba-$1.yaml $common >> "$OUT/checkpoint_stall.log" 2>&1
        echo "exit $?, wall $(awk "BEGIN{print $(date +%s.%N) - $t0}") s" | tee -a "$OUT/checkpoint_stall.log"
        grep -h "checkpoint" $ck/runs/mamba-$1/train.log | tee -a "$OUT/checkpoint_stall.log"
        python3 -c "import json,sys; print('ms per step:', ' '.join('%.0f' % json.loads(l)['ms_per_step'] for l in open(sys.argv[1]) if 'ms_per_step' in l))" \
          $ck/runs/mamba-$1/metrics.jsonl | tee -a "$OUT/checkpoint_stall.log"
        ls -l $ck/runs/mamba-$1/checkpoints | tee -a "$OUT/checkpoint_stall.log"
        echo "== mamba-$1: resume (load only)" | tee -a "$OUT/checkpoint_stall.log"
        sync; echo 3 | sudo -n tee /proc/sys/vm/drop_caches > /dev/null 2>&1 || echo "(page cache not dropped)"
        t0=$(date +%s.%N); ./build-gpu/serpent train configs/mamba-$1.yaml $common --resume auto >> "$OUT/checkpoint_stall.log" 2>&1
        echo "exit $?, wall $(awk "BEGIN{print $(date +%s.%N) - $t0}") s" | tee -a "$OUT/checkpoint_stall.log"
        grep -E "resumed from|already complete" "$OUT/checkpoint_stall.log" | tail -2
        rm -rf $ck/runs
      done ;;
    memory-estimate)
      # The trainer's memory estimate (its "memory:" line) against the peak it then measures
      # (metrics.jsonl's peak_memory_gib) for the five presets, at the issue's micro-batches; each
      # run is killed once it has logged three steps (no checkpoint is written).
      me=/tmp/serpent-mem && rm -rf $me && mkdir -p $me
      ./build-gpu/serpent prepare --tokenizer data/tokenizers/gpt-neox-20b/tokenizer.json \
        --input data/corpus/austen.jsonl.gz --out $me/data --val-fraction 0.02 --quiet
      # MEM_SPECS ("size micro-batch" entries separated by ';') and MEM_EXTRA (further overrides,
      # as key=value words) narrow or vary the runs.
      IFS=';' read -ra specs <<< "${MEM_SPECS:-130m 8;370m 8;790m 8;1.4b 8;2.8b 4}"
      extra=(); for kv in ${MEM_EXTRA:-}; do extra+=(--set "$kv"); done
      for spec in "${specs[@]}"; do
        set -- $spec
        ./build-gpu/serpent train configs/mamba-$1.yaml "${extra[@]}" --set data.path=$me/data --set log.runs_dir=$me/runs \
          --set data.micro_batch_size=$2 --set data.global_batch_tokens=$(( $2 * 2048 )) --set train.max_steps=100 \
          --set train.max_tokens=0 --set optim.warmup_steps=1 --set train.log_every=1 > $me/$1.log 2>&1 &
        pid=$!
        for i in $(seq 1 240); do
          sleep 0.5
          [ "$( (wc -l < $me/runs/mamba-$1/metrics.jsonl) 2>/dev/null || echo 0)" -ge 3 ] && break
          kill -0 $pid 2>/dev/null || break
        done
        kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
        echo "== mamba-$1 $2 x 2048 ${MEM_EXTRA:-}: $(grep -h 'memory:' $me/$1.log | sed 's/^ *//')" | tee -a "$OUT/memory_estimate.log"
        python3 -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print('   measured peak_memory_gib per step:', [x.get('peak_memory_gib') for x in r], 'tokens/s:', [x.get('tokens_per_s') for x in r])" \
          $me/runs/mamba-$1/metrics.jsonl 2>&1 | tee -a "$OUT/memory_estimate.log"
        rm -rf $me/runs
      done ;;
    "") ;;
    *) echo "unknown stage $stage" ;;
  esac
done
