// Gradient reduction for data-parallel training, overlapped with backward.
//
// The parameters are grouped into buckets of about bucket_mb megabytes, taking them in reverse
// registration order, the order in which backward completes their gradients (the last layer
// first; the embedding, used at both ends of a tied model, last). Each bucket owns one flat
// buffer, and each parameter's .grad is a view into it, so backward accumulates straight into the
// buffer and a bucket is reduced with one collective rather than one per tensor.
//
// The autograd engine calls TensorImpl::on_grad_ready once a leaf's gradient of the current
// backward is final (autograd/engine.cpp). On a backward with sync on (the last micro-batch of a
// step), the bucket whose gradients are all final starts its reduction right away (on a GPU on
// the communicator's stream, dist/comm.h) while backward goes on with the layers below. Buckets
// start in index order on every rank, as NCCL and MPI require the same order of collectives
// everywhere; a bucket waits for the ones before it. finish() starts whatever backward did not (a
// parameter that got no gradient on this rank contributes zeros), waits for all of them and
// divides by the world size, so the result is the mean over ranks of their gradients.
//
// Two reductions:
//   all_reduce      every rank ends with the whole averaged gradient (plain data parallelism);
//   reduce_scatter  (ZeRO-1, optim/zero1.h) each bucket is padded to a multiple of the world size
//                   and cut into world-size equal chunks; rank r ends with the averaged chunk r of
//                   every bucket in shard_grad(b). The .grad views then hold this rank's own
//                   unreduced gradients and must not be used.
//
// Usage per optimizer step:
//   buckets.zero_grad();
//   for each micro-batch i of n: buckets.set_sync(i == n - 1); autograd::backward(loss);
//   buckets.finish();  // then clip and step the optimizer
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "dist/comm.h"

namespace serpent {

enum class GradReduction { all_reduce, reduce_scatter };

struct GradBucketOptions {
  double bucket_mb = 25;  // bucket size in MB (10^6 bytes); a parameter larger than it gets its own
  GradReduction reduction = GradReduction::all_reduce;
};

class GradBuckets {
 public:
  // A parameter's place: elements [offset, offset + numel) of bucket `bucket`.
  struct Slot {
    int param;  // index into the parameters passed to the constructor
    int bucket;
    int64_t offset, numel;
  };
  struct Bucket {
    std::vector<int> slots;  // indices into slots(), in buffer order
    int64_t numel = 0;       // elements used
    int64_t padded = 0;      // elements in the buffer: numel, or with reduce_scatter rounded up to a
                             // multiple of the world size
    int64_t chunk = 0;       // padded / world size: what each rank owns with reduce_scatter
  };

  // params: the model's parameters (registration order), all of one floating dtype on
  // comm.device(). Installs on_grad_ready on each and sets .grad to the buffer views (zeroed).
  GradBuckets(const NamedTensors& params, Communicator& comm, const GradBucketOptions& options = {});
  // Removes the hooks; the .grad views stay valid (they keep the buffers alive).
  ~GradBuckets();
  GradBuckets(const GradBuckets&) = delete;
  GradBuckets& operator=(const GradBuckets&) = delete;

  void zero_grad();          // zeroes the buffers and points every .grad at its view again
  void set_sync(bool sync);  // whether the next backward starts the reductions
  void finish();             // see the top of this file

  const std::vector<Bucket>& buckets() const { return buckets_; }
  const std::vector<Slot>& slots() const { return slots_; }
  const NamedTensors& params() const { return params_; }
  Tensor buffer(int b) const { return buffers_[size_t(b)]; }     // (padded)
  Tensor shard_grad(int b) const { return shards_[size_t(b)]; }  // (chunk), reduce_scatter only
  // Buckets whose reduction started during the last backward (rather than in finish()): the
  // measure of overlap that tests check.
  int started_during_backward() const { return started_in_backward_; }

 private:
  void on_ready(int param);
  void start(int b);
  Tensor view_of(int param) const;  // the parameter's region of its bucket, in its shape

  NamedTensors params_;
  Communicator& comm_;
  GradBucketOptions options_;
  std::vector<Slot> slots_;  // one per parameter, by parameter index
  std::vector<Bucket> buckets_;
  std::vector<Tensor> buffers_, shards_;
  // The backward in progress.
  bool sync_ = false;
  std::vector<bool> param_ready_;
  std::vector<int64_t> bucket_pending_;  // parameters of each bucket not final yet
  int next_start_ = 0;                   // buckets [0, next_start_) have started
  std::vector<std::unique_ptr<CommWork>> work_;
  size_t polled_ = 0;  // work_[0, polled_) is known to be complete
  int started_in_backward_ = 0;
};

}  // namespace serpent
