// The benchmarks behind `serpent bench`: a whole training step of a model (or, with --forward,
// the forward pass that evaluation runs), per-op-family timings at the model's shapes, and the
// selective scan alone. GPU timings use CUDA events around work
// enqueued on the device's stream, after warm-up, and report medians.
#pragma once

#include <string>

#include "cli/args.h"
#include "core/device.h"
#include "core/dtype.h"
#include "layers/mamba_config.h"

namespace serpent {

struct ModelBench {
  MambaConfig model;
  int64_t batch, seq_len, steps, warmup, seed;
  Device device;
  DType compute_dtype;  // f32, or bf16 mixed precision on a GPU
  bool breakdown;       // also time each op family at this workload's shapes (GPU)
  bool forward_only;    // time the evaluation path instead: the loss without recording a graph
  // "": gradients as the plain trainer keeps them; local, nccl or mpi: gradients in the
  // data-parallel buckets (dist/grad_buckets.h) reduced by that communicator, at the world size
  // of the launcher environment (1 without one), to measure what data parallelism costs.
  std::string dist;
  double bucket_mb = 25;
  bool recompute_blocks = false;  // train.recompute full
  bool bf16_moments = false;      // optim.state_dtype bf16
};

int bench_model(const ModelBench& b);
int bench_scan(int64_t B, int64_t E, int64_t L, int64_t N, Device device, int64_t steps, int64_t warmup, uint64_t seed);

}  // namespace serpent
