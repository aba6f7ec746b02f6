#include "optim/zero1.h"

#include <cmath>
#include <map>

#include "core/creation.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cuda/adamw.h"

namespace serpent {

ShardedAdamW::ShardedAdamW(GradBuckets& buckets, Communicator& comm, const AdamWConfig& cfg)
    : buckets_(buckets), comm_(comm), cfg_(cfg) {
  const NamedTensors& params = buckets.params();
  const Device dev = comm.device();
  SERPENT_CHECK(buckets.shard_grad(0).defined(), "ShardedAdamW: the gradient buckets must reduce_scatter");
  for (const auto& [name, p] : params)
    SERPENT_CHECK(p.dtype() == DType::f32 || (dev.is_cpu() && p.dtype() == DType::f64 && !cfg.bf16_moments),
                  "ShardedAdamW: parameter '", name, "' is ", p.str(), "; expected f32 master weights",
                  dev.is_cpu() && !cfg.bf16_moments ? " (or f64 on the cpu)" : " (bf16 moments need f32)");

  const int64_t rank = comm.rank();
  for (int b = 0; b < int(buckets.buckets().size()); ++b) {
    const GradBuckets::Bucket& bucket = buckets.buckets()[size_t(b)];
    const DType dtype = params.front().second.dtype();
    Tensor flat = zeros({bucket.padded}, dtype, dev);
    // Each parameter moves into the buffer: the same TensorImpl (shared by the model and anyone
    // else holding it) now reads the buffer's storage at its offset.
    for (int s : bucket.slots) {
      const GradBuckets::Slot& slot = buckets.slots()[size_t(s)];
      Tensor p = params[size_t(slot.param)].second;
      flat_view(flat, slot.offset, slot.numel).copy_(p);
      TensorImpl& impl = p.impl();
      impl.storage = flat.impl().storage;
      impl.offset = flat.impl().offset + slot.offset;
      // A GPU's mixed-precision matmuls read a bf16 copy of every weight matrix (as optim/adamw.h
      // keeps them); step() refreshes it from the gathered weights.
      if (dev.is_cuda() && p.dim() >= 2 && !impl.bf16_copy) impl.bf16_copy = p.detach().to(DType::bf16).impl_ptr();
      const int64_t lo = std::max(slot.offset, rank * bucket.chunk);
      const int64_t hi = std::min(slot.offset + slot.numel, (rank + 1) * bucket.chunk);
      if (lo < hi) pieces_.push_back({slot.param, b, lo, hi, uses_weight_decay(params[size_t(slot.param)].first, p)});
    }
    params_flat_.push_back(flat);
    const DType moments = cfg.bf16_moments ? DType::bf16 : dtype;
    exp_avg_.push_back(zeros({bucket.chunk}, moments, dev));
    exp_avg_sq_.push_back(zeros({bucket.chunk}, moments, dev));
  }
  if (dev.is_cuda()) step_device_ = zeros({}, DType::i64, dev);
}

int64_t ShardedAdamW::chunk_start(int b) const {
  return comm_.rank() * buckets_.buckets()[size_t(b)].chunk;
}

int64_t ShardedAdamW::shard_numel() const {
  int64_t n = 0;
  for (const Tensor& m : exp_avg_) n += m.numel();
  return n;
}

Tensor ShardedAdamW::grad_norm() const {
  const Device dev = comm_.device();
  if (dev.is_cpu()) {
    double local = 0;
    for (const Piece& pc : pieces_) {
      const Tensor g = flat_view(buckets_.shard_grad(pc.bucket), pc.lo - chunk_start(pc.bucket), pc.hi - pc.lo);
      dispatch_float(g.dtype(), "ShardedAdamW::grad_norm", [&](auto z) {
        using T = decltype(z);
        const T* x = g.data<T>();
        for (int64_t i = 0; i < g.numel(); ++i) local += double(x[i]) * double(x[i]);
      });
    }
    return full({}, std::sqrt(all_reduce_sum(comm_, local)), DType::f32);
  }
#ifdef SERPENT_CUDA
  std::vector<const float*> grads;
  std::vector<int64_t> numels;
  for (const Piece& pc : pieces_) {
    grads.push_back(buckets_.shard_grad(pc.bucket).data<float>() + (pc.lo - chunk_start(pc.bucket)));
    numels.push_back(pc.hi - pc.lo);
  }
  Tensor mine = zeros({1}, DType::f32, dev);
  if (!grads.empty()) cuda::grad_norm(grads, numels, mine.data<float>(), dev.index);
  Tensor all = Tensor::empty({comm_.world_size()}, DType::f32, dev);
  comm_.all_gather(mine, all);
  Tensor out = Tensor::empty({}, DType::f32, dev);
  cuda::grad_norm({all.data<float>()}, {all.numel()}, out.data<float>(), dev.index);
  return out;
#else
  fail("ShardedAdamW: parameters on ", dev.str(), " but this build has no CUDA backend");
#endif
}

void ShardedAdamW::step(double lr, double grad_scale) {
  update(lr, grad_scale, nullptr, 0.0);
}

void ShardedAdamW::step(double lr, const Tensor& grad_norm, double max_norm) {
  SERPENT_CHECK(grad_norm.defined() && grad_norm.numel() == 1 && grad_norm.device() == comm_.device() &&
                    grad_norm.dtype() == DType::f32,
                "ShardedAdamW::step: the gradient norm must be a one-element f32 tensor on ", comm_.device().str(),
                ", got ", grad_norm.str());
  if (comm_.device().is_cuda()) {
    update(lr, 1.0, &grad_norm, max_norm);
    return;
  }
  const double norm = grad_norm.item();
  if (!std::isfinite(norm)) return;  // the same on every rank: all skip
  update(lr, clip_scale(norm, max_norm), nullptr, 0.0);
}

int64_t ShardedAdamW::steps() const {
  return step_device_.defined() ? int64_t(step_device_.item()) : step_;
}

void ShardedAdamW::update(double lr, double grad_scale, [[maybe_unused]] const Tensor* grad_norm,
                          [[maybe_unused]] double max_norm) {  // both used on a GPU only
  const NamedTensors& params = buckets_.params();
  if (comm_.device().is_cpu()) {
    ++step_;
    for (const Piece& pc : pieces_) {
      const int64_t at = pc.lo - chunk_start(pc.bucket), n = pc.hi - pc.lo;
      const cpu::AdamWStep args{lr,         cfg_.beta1, cfg_.beta2, cfg_.eps, pc.decay ? cfg_.weight_decay : 0.0,
                                grad_scale, step_};
      if (cfg_.bf16_moments) {
        cpu::adamw_update<float, bf16>(
            params_flat_[size_t(pc.bucket)].data<float>() + pc.lo, buckets_.shard_grad(pc.bucket).data<float>() + at,
            exp_avg_[size_t(pc.bucket)].data<bf16>() + at, exp_avg_sq_[size_t(pc.bucket)].data<bf16>() + at, n, args);
        continue;
      }
      dispatch_float(params.front().second.dtype(), "ShardedAdamW", [&](auto z) {
        using T = decltype(z);
        cpu::adamw_update<T>(params_flat_[size_t(pc.bucket)].data<T>() + pc.lo,
                             buckets_.shard_grad(pc.bucket).data<T>() + at, exp_avg_[size_t(pc.bucket)].data<T>() + at,
                             exp_avg_sq_[size_t(pc.bucket)].data<T>() + at, n, args);
      });
    }
  } else {
#ifdef SERPENT_CUDA
    std::vector<cuda::AdamWTensor> tensors;
    for (const Piece& pc : pieces_) {
      const int64_t at = pc.lo - chunk_start(pc.bucket);
      const size_t moment_bytes = dtype_size(exp_avg_[size_t(pc.bucket)].dtype());
      tensors.push_back({params_flat_[size_t(pc.bucket)].data<float>() + pc.lo,
                         buckets_.shard_grad(pc.bucket).data<float>() + at,
                         static_cast<char*>(exp_avg_[size_t(pc.bucket)].data_ptr()) + at * int64_t(moment_bytes),
                         static_cast<char*>(exp_avg_sq_[size_t(pc.bucket)].data_ptr()) + at * int64_t(moment_bytes),
                         nullptr, pc.hi - pc.lo, pc.decay ? cfg_.weight_decay : 0.0});
    }
    // The step count advances (or, for a norm that is not finite, stays) on the device, also on a
    // rank whose chunks hold no parameter.
    const cuda::AdamWArgs args{lr,
                               cfg_.beta1,
                               cfg_.beta2,
                               cfg_.eps,
                               grad_norm ? grad_norm->data<float>() : nullptr,
                               max_norm,
                               grad_scale,
                               step_device_.data<int64_t>(),
                               cfg_.bf16_moments};
    cuda::adamw_update(tensors, args, comm_.device().index);
#endif
  }
  // Every rank's chunks to every rank, in place.
  std::vector<std::unique_ptr<CommWork>> work;
  for (int b = 0; b < int(params_flat_.size()); ++b) {
    const Tensor& flat = params_flat_[size_t(b)];
    work.push_back(comm_.all_gather_async(flat_view(flat, chunk_start(b), buckets_.buckets()[size_t(b)].chunk), flat));
  }
  for (auto& w : work) w->wait();
  for (const auto& [name, p] : params)
    if (const auto& copy = p.impl().bf16_copy) Tensor(copy).copy_(p);
}

NamedTensors ShardedAdamW::state() const {
  const NamedTensors& params = buckets_.params();
  NamedTensors avg, avg_sq;
  if (comm_.rank() == 0)
    for (const auto& [name, p] : params) {
      avg.emplace_back(name + ".exp_avg", Tensor::empty(p.shape(), DType::f32));
      avg_sq.emplace_back(name + ".exp_avg_sq", Tensor::empty(p.shape(), DType::f32));
    }
  for (int b = 0; b < int(params_flat_.size()); ++b) {
    const GradBuckets::Bucket& bucket = buckets_.buckets()[size_t(b)];
    for (int which = 0; which < 2; ++which) {
      const Tensor& mine = (which == 0 ? exp_avg_ : exp_avg_sq_)[size_t(b)];
      Tensor full = Tensor::empty({bucket.padded}, mine.dtype(), comm_.device());
      comm_.all_gather(mine, full);
      if (comm_.rank() != 0) continue;
      const Tensor host = full.to(Device::cpu());
      for (int s : bucket.slots) {
        const GradBuckets::Slot& slot = buckets_.slots()[size_t(s)];
        (which == 0 ? avg : avg_sq)[size_t(slot.param)].second.copy_(flat_view(host, slot.offset, slot.numel));
      }
    }
  }
  NamedTensors out;
  for (size_t i = 0; i < avg.size(); ++i) {
    out.push_back(avg[i]);
    out.push_back(avg_sq[i]);
  }
  return out;
}

void ShardedAdamW::load_state(const NamedTensors& state, int64_t steps) {
  const NamedTensors& params = buckets_.params();
  std::map<std::string, Tensor> by_name;
  if (comm_.rank() == 0) {
    for (const auto& [k, v] : state) by_name[k] = v;
    for (const auto& [name, p] : params)
      for (const char* suffix : {".exp_avg", ".exp_avg_sq"}) {
        auto it = by_name.find(name + suffix);
        SERPENT_CHECK(it != by_name.end(), "optimizer state is missing '", name, suffix, "'");
        SERPENT_CHECK(it->second.shape() == p.shape(), "optimizer state '", name, suffix, "' has shape ",
                      shape_str(it->second.shape()), ", expected ", shape_str(p.shape()));
      }
  }
  for (int b = 0; b < int(params_flat_.size()); ++b) {
    const GradBuckets::Bucket& bucket = buckets_.buckets()[size_t(b)];
    for (int which = 0; which < 2; ++which) {
      Tensor& mine = (which == 0 ? exp_avg_ : exp_avg_sq_)[size_t(b)];
      Tensor full = zeros({bucket.padded}, mine.dtype());
      if (comm_.rank() == 0)
        for (int s : bucket.slots) {
          const GradBuckets::Slot& slot = buckets_.slots()[size_t(s)];
          const std::string& name = params[size_t(slot.param)].first;
          flat_view(full, slot.offset, slot.numel).copy_(by_name.at(name + (which == 0 ? ".exp_avg" : ".exp_avg_sq")));
        }
      full = full.to(comm_.device());
      comm_.broadcast(full, 0);
      mine.copy_(flat_view(full, chunk_start(b), bucket.chunk));
    }
  }
  step_ = steps;
  if (step_device_.defined()) step_device_.fill_(double(steps));
}

}  // namespace serpent
