#include "dist/grad_buckets.h"

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/error.h"

namespace serpent {

GradBuckets::GradBuckets(const NamedTensors& params, Communicator& comm, const GradBucketOptions& options)
    : params_(params), comm_(comm), options_(options) {
  SERPENT_CHECK(!params_.empty(), "GradBuckets: no parameters");
  SERPENT_CHECK(options.bucket_mb > 0, "GradBuckets: the bucket size must be positive, got ", options.bucket_mb, " MB");
  const DType dtype = params_.front().second.dtype();
  for (const auto& [name, p] : params_) {
    SERPENT_CHECK(p.requires_grad() && p.is_leaf(), "GradBuckets: parameter '", name,
                  "' is not a leaf that requires a gradient");
    SERPENT_CHECK(p.device() == comm.device(), "GradBuckets: parameter '", name, "' is ", p.str(), " but the ",
                  comm.backend(), " communicator moves tensors on ", comm.device().str());
    SERPENT_CHECK(p.dtype() == dtype && is_floating(dtype), "GradBuckets: parameter '", name, "' is ", p.str(),
                  "; every parameter must have the floating dtype ", dtype_name(dtype), " of '", params_.front().first,
                  "'");
  }

  // Reverse registration order; a bucket closes once it reaches the cap, and a parameter that
  // would overflow a non-empty bucket starts the next one.
  const double cap_elems = options.bucket_mb * 1e6 / double(dtype_size(dtype));
  slots_.resize(params_.size());
  for (int i = int(params_.size()) - 1; i >= 0; --i) {
    const int64_t n = params_[size_t(i)].second.numel();
    if (buckets_.empty() || (buckets_.back().numel > 0 && double(buckets_.back().numel + n) > cap_elems))
      buckets_.emplace_back();
    Bucket& b = buckets_.back();
    slots_[size_t(i)] = {i, int(buckets_.size()) - 1, b.numel, n};
    b.slots.push_back(i);
    b.numel += n;
  }
  const int64_t w = comm.world_size();
  for (Bucket& b : buckets_) {
    b.padded = options.reduction == GradReduction::reduce_scatter ? (b.numel + w - 1) / w * w : b.numel;
    if (options.reduction == GradReduction::reduce_scatter) b.chunk = b.padded / w;
    buffers_.push_back(zeros({b.padded}, dtype, comm.device()));
    if (options.reduction == GradReduction::reduce_scatter)
      shards_.push_back(zeros({b.padded / w}, dtype, comm.device()));
  }
  param_ready_.assign(params_.size(), false);
  for (const Bucket& b : buckets_) bucket_pending_.push_back(int64_t(b.slots.size()));
  for (size_t i = 0; i < params_.size(); ++i)
    params_[i].second.impl().on_grad_ready = [this, i](Tensor&) { on_ready(int(i)); };
  zero_grad();
}

GradBuckets::~GradBuckets() {
  work_.clear();  // each waits
  for (auto& [name, p] : params_) p.impl().on_grad_ready = nullptr;
}

Tensor GradBuckets::view_of(int param) const {
  const Slot& s = slots_[size_t(param)];
  Tensor v = flat_view(buffers_[size_t(s.bucket)], s.offset, s.numel);
  v.impl().shape = params_[size_t(param)].second.shape();
  return v;
}

void GradBuckets::zero_grad() {
  SERPENT_CHECK(work_.empty(), "GradBuckets::zero_grad: reductions are still in flight (call finish() first)");
  for (Tensor& b : buffers_) b.zero_();
  for (size_t i = 0; i < params_.size(); ++i) params_[i].second.set_grad(view_of(int(i)));
}

void GradBuckets::set_sync(bool sync) {
  sync_ = sync;
  if (sync) started_in_backward_ = 0;
}

void GradBuckets::on_ready(int param) {
  if (!sync_ || param_ready_[size_t(param)]) return;
  Tensor& p = params_[size_t(param)].second;
  const Slot& s = slots_[size_t(param)];
  // Normally .grad is the view and backward summed into the buffer. If something replaced it
  // (a zero_grad of the model, say), its value moves into the buffer now.
  const void* mine =
      static_cast<const char*>(buffers_[size_t(s.bucket)].data_ptr()) + s.offset * int64_t(dtype_size(p.dtype()));
  if (Tensor g = p.grad(); g.defined() && g.data_ptr() != mine) {
    Tensor view = view_of(param);
    view.copy_(g);
    p.set_grad(view);
  }
  param_ready_[size_t(param)] = true;
  --bucket_pending_[size_t(s.bucket)];
  while (next_start_ < int(buckets_.size()) && bucket_pending_[size_t(next_start_)] == 0) {
    start(next_start_++);
    ++started_in_backward_;
  }
  // MPI moves non-blocking collectives forward only inside MPI calls, so on the cpu each hook
  // lets the oldest unfinished one progress (MPI then advances all of them). A GPU's collectives
  // progress on their own.
  if (comm_.device().is_cpu() && polled_ < work_.size() && work_[polled_]->poll()) ++polled_;
}

void GradBuckets::start(int b) {
  if (options_.reduction == GradReduction::all_reduce)
    work_.push_back(comm_.all_reduce_async(buffers_[size_t(b)]));
  else
    work_.push_back(comm_.reduce_scatter_async(buffers_[size_t(b)], shards_[size_t(b)]));
}

void GradBuckets::finish() {
  // Parameters backward did not reach: their gradient, if they have one outside the buffer, or
  // zeros (the buffer region was zeroed by zero_grad and not written since).
  for (size_t i = 0; i < params_.size(); ++i) {
    if (param_ready_[i]) continue;
    Tensor& p = params_[i].second;
    Tensor view = view_of(int(i));
    if (Tensor g = p.grad(); g.defined() && g.data_ptr() != view.data_ptr()) view.copy_(g);
    p.set_grad(view);
    param_ready_[i] = true;
    --bucket_pending_[size_t(slots_[i].bucket)];
  }
  while (next_start_ < int(buckets_.size())) start(next_start_++);
  for (auto& w : work_) w->wait();
  work_.clear();
  polled_ = 0;
  const int w = comm_.world_size();
  if (w > 1) {
    for (Tensor& t : options_.reduction == GradReduction::all_reduce ? buffers_ : shards_) scale_(t, 1.0 / w);
  }
  param_ready_.assign(params_.size(), false);
  for (size_t b = 0; b < buckets_.size(); ++b) bucket_pending_[b] = int64_t(buckets_[b].slots.size());
  next_start_ = 0;
  sync_ = false;
}

}  // namespace serpent
