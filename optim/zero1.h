// ZeRO-1: AdamW whose moments are sharded over the ranks of a data-parallel job.
//
// The shard of a rank follows the gradient buckets (dist/grad_buckets.h, built with
// GradReduction::reduce_scatter): every bucket is padded to a multiple of the world size W and cut
// into W equal chunks, and rank r owns chunk r of every bucket. So that a chunk is also a
// contiguous run of parameters, the constructor moves the parameters into one flat buffer per
// bucket with the gradient buffer's layout (each parameter tensor stays the same object; its
// storage now points into the buffer).
//
// One step, after GradBuckets::finish() left this rank the averaged gradient of its chunks:
//   1. grad_norm(): the global norm, from every rank's norm over its chunks (combined in rank
//      order, so every rank gets the same number);
//   2. step(lr, scale): the AdamW update (kernels/cpu/adamw.h or kernels/cuda/adamw.h, the same
//      arithmetic as optim/adamw.h) over this rank's chunks only, cut at parameter boundaries so each
//      piece keeps its parameter's weight decay;
//   3. an all-gather of every bucket's updated chunks, after which every rank holds all the new
//      weights (and, on a GPU, the bf16 copies of the matmul weights are refreshed from them).
// Each rank thus keeps 1/W of the moments: the saving ZeRO-1 is for.
//
// Checkpoints hold the full moments under AdamW's names ("<param>.exp_avg", ...): state() gathers
// them and load_state() hands each rank its chunks, so a checkpoint moves freely between world
// sizes and between sharded and plain AdamW.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dist/comm.h"
#include "dist/grad_buckets.h"
#include "optim/adamw.h"

namespace serpent {

class ShardedAdamW {
 public:
  // buckets must reduce_scatter over comm; every parameter must be f32 (f64 allowed on the cpu).
  ShardedAdamW(GradBuckets& buckets, Communicator& comm, const AdamWConfig& cfg);

  // The global L2 norm of the averaged gradient as a one-element f32 tensor on the parameters'
  // device, bitwise the same on every rank: each rank's norm over its chunks, then the norm of
  // those W numbers (gathered, so added in rank order). A collective; on a GPU nothing waits.
  Tensor grad_norm() const;
  // One update of this rank's chunks with the gradients scaled by grad_scale, then the all-gather
  // of the weights (a collective).
  void step(double lr, double grad_scale = 1.0);
  // The same with the gradients clipped to max_norm (<= 0: no clipping) given their global norm
  // (grad_norm()); a norm that is not finite skips the update, as AdamW::step does (on a GPU,
  // decided on the device).
  void step(double lr, const Tensor& grad_norm, double max_norm);

  // Completed updates (on a GPU this waits for the device).
  int64_t steps() const;
  // The full moments, named as AdamW::state() names them, as f32 cpu tensors on rank 0 and empty
  // on the other ranks (a collective).
  NamedTensors state() const;
  // Takes the full moments from rank 0's `state` (ignored elsewhere) and keeps this rank's chunks;
  // steps must be the same on every rank (a collective).
  void load_state(const NamedTensors& state, int64_t steps);

  // Elements of moments this rank holds (per moment), for tests and logs.
  int64_t shard_numel() const;

 private:
  // A parameter's elements [lo, hi) of bucket `bucket` (bucket coordinates) inside this rank's chunk.
  struct Piece {
    int param;
    int bucket;
    int64_t lo, hi;
    bool decay;
  };
  int64_t chunk_start(int b) const;
  // The update of this rank's pieces (grad_norm: null, or the device norm to clip with), then the
  // all-gather.
  void update(double lr, double grad_scale, const Tensor* grad_norm, double max_norm);

  GradBuckets& buckets_;
  Communicator& comm_;
  AdamWConfig cfg_;
  std::vector<Tensor> params_flat_;           // per bucket (padded), the parameters' storage
  std::vector<Tensor> exp_avg_, exp_avg_sq_;  // per bucket (chunk): this rank's moments
  std::vector<Piece> pieces_;
  int64_t step_ = 0;    // on the cpu
  Tensor step_device_;  // on a GPU: the update count the AdamW kernel reads and advances (i64 [])
};

}  // namespace serpent
