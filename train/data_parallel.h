// The data-parallel side of the trainer (docs/DISTRIBUTED.md): the communicator, the gradient
// buckets (unless one process on the local communicator) and the optimizer, plain AdamW or ZeRO-1, behind one
// small interface, so that train/trainer.cpp runs the same code on one process (the local
// communicator) and on many.
//
// A step, on every rank:
//   dp.zero_grad();
//   for each micro-batch i of n: dp.set_sync(i == n - 1); autograd::backward(loss_i);
//   dp.finish_backward();           // the mean gradient over ranks (or this rank's shard of it)
//   Tensor norm = dp.grad_norm();   // the global norm, bitwise the same on every rank
//   dp.step(lr, norm, max_norm);    // clipped AdamW update (skipped for a norm that is not
//                                   // finite); every rank ends with the same weights
// On a GPU nothing here waits for the device: the norm stays a device tensor.
//
// Checkpoints hold full, unsharded weights and moments: optimizer_state() gathers them to rank 0,
// load_optimizer_state() takes them from rank 0, and broadcast_parameters() gives every rank
// rank 0's weights, so a run saved on N ranks resumes on M.
#pragma once

#include <memory>

#include "dist/comm.h"
#include "dist/grad_buckets.h"
#include "layers/mamba.h"
#include "optim/adamw.h"
#include "optim/zero1.h"

namespace serpent {

struct DataParallelOptions {
  bool zero1 = false;
  double bucket_mb = 25;
};

class DataParallel {
 public:
  // The model's parameters must already be on comm.device(). With zero1 they move into the
  // buckets' flat buffers (optim/zero1.h).
  DataParallel(Module& model, std::unique_ptr<Communicator> comm, const AdamWConfig& adamw,
               const DataParallelOptions& options);

  Communicator& comm() { return *comm_; }
  int rank() const { return comm_->rank(); }
  int world_size() const { return comm_->world_size(); }
  bool zero1() const { return sharded_ != nullptr; }

  void zero_grad();
  void set_sync(bool last_micro_batch);
  void finish_backward();
  // One-element f32 tensor on the model's device.
  Tensor grad_norm();
  void step(double lr, const Tensor& grad_norm, double max_norm);

  int64_t optimizer_steps() const;
  // The full moments named as AdamW::state() names them: on rank 0 (empty elsewhere). Collective.
  NamedTensors optimizer_state();
  // Rank 0's full moments and update count to every rank (`state` is read on rank 0 only).
  // Collective.
  void load_optimizer_state(const NamedTensors& state, int64_t steps);
  // Rank 0's parameter values to every rank (and the bf16 copies refreshed). Collective.
  void broadcast_parameters();

 private:
  Module& model_;
  std::unique_ptr<Communicator> comm_;
  std::unique_ptr<GradBuckets> buckets_;   // with several ranks or ZeRO-1
  std::unique_ptr<AdamW> adamw_;           // plain data parallelism
  std::unique_ptr<ShardedAdamW> sharded_;  // ZeRO-1
};

}  // namespace serpent
