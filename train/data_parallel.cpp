#include "train/data_parallel.h"

#include <string>

namespace serpent {

DataParallel::DataParallel(Module& model, std::unique_ptr<Communicator> comm, const AdamWConfig& adamw,
                           const DataParallelOptions& options)
    : model_(model), comm_(std::move(comm)) {
  const NamedTensors params = model.named_parameters();
  // One process on the local communicator without ZeRO-1 has nothing to reduce: its gradients
  // stay the leaves' own .grad, made during backward and freed by zero_grad(), instead of bucket
  // buffers that live through the forward (P x 4 bytes at the step's peak: 5.1 GiB at
  // mamba-1.4b) and that every weight gradient is added into. An NCCL or MPI job of one rank
  // keeps its buckets, so that path runs (and is tested) as it does on many.
  const bool alone = comm_->world_size() == 1 && std::string(comm_->backend()) == "local";
  if (!alone || options.zero1)
    buckets_ =
        std::make_unique<GradBuckets>(params, *comm_,
                                      GradBucketOptions{options.bucket_mb, options.zero1 ? GradReduction::reduce_scatter
                                                                                         : GradReduction::all_reduce});
  if (options.zero1)
    sharded_ = std::make_unique<ShardedAdamW>(*buckets_, *comm_, adamw);
  else
    adamw_ = std::make_unique<AdamW>(params, adamw);
}

void DataParallel::zero_grad() {
  if (buckets_) {
    buckets_->zero_grad();
    return;
  }
  for (Tensor p : model_.parameters()) p.zero_grad();
}

void DataParallel::set_sync(bool last_micro_batch) {
  if (buckets_) buckets_->set_sync(last_micro_batch);
}

void DataParallel::finish_backward() {
  if (buckets_) buckets_->finish();
}

Tensor DataParallel::grad_norm() {
  if (sharded_) return sharded_->grad_norm();
  // Every rank holds the same averaged gradient, so the same norm.
  return grad_norm_device(model_.parameters());
}

void DataParallel::step(double lr, const Tensor& grad_norm, double max_norm) {
  if (sharded_)
    sharded_->step(lr, grad_norm, max_norm);
  else
    adamw_->step(lr, grad_norm, max_norm);
}

int64_t DataParallel::optimizer_steps() const {
  return sharded_ ? sharded_->steps() : adamw_->steps();
}

NamedTensors DataParallel::optimizer_state() {
  if (sharded_) return sharded_->state();
  // Plain AdamW: every rank holds the whole state.
  return rank() == 0 ? adamw_->state() : NamedTensors{};
}

void DataParallel::load_optimizer_state(const NamedTensors& state, int64_t steps) {
  if (sharded_) {
    sharded_->load_state(state, steps);
    return;
  }
  // Rank 0 loads; the other ranks take the count (their moments, passed as the state, copy onto
  // themselves) and then receive rank 0's moments.
  adamw_->load_state(rank() == 0 ? state : adamw_->state(), steps);
  if (world_size() == 1) return;
  std::vector<std::unique_ptr<CommWork>> work;
  for (const auto& [name, t] : adamw_->state()) work.push_back(comm_->broadcast_async(t, 0));
  for (auto& w : work) w->wait();
}

void DataParallel::broadcast_parameters() {
  if (world_size() > 1) {
    std::vector<std::unique_ptr<CommWork>> work;
    for (const Tensor& p : model_.parameters()) work.push_back(comm_->broadcast_async(p, 0));
    for (auto& w : work) w->wait();
  }
  for (const Tensor& p : model_.parameters())
    if (const auto& copy = p.impl().bf16_copy) Tensor(copy).copy_(p);
}

}  // namespace serpent
