#include "optim/adamw.h"

#include <cmath>

#include "autograd/checks.h"
#include "core/creation.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cuda/adamw.h"

namespace serpent {

bool uses_weight_decay(const std::string& name, const Tensor& param) {
  const auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return param.dim() >= 2 && !ends_with("A_log");
}

AdamW::AdamW(const NamedTensors& params, const AdamWConfig& cfg) : cfg_(cfg) {
  if (!params.empty()) device_ = params.front().second.device();
  for (const auto& [name, p] : params) {
    SERPENT_CHECK(p.device() == device_, "AdamW: parameter '", name, "' is on ", p.device().str(), " but '",
                  params.front().first, "' is on ", device_.str(), "; expected every parameter on one device");
    if (device_.is_cuda()) {
      SERPENT_CHECK(p.dtype() == DType::f32, "AdamW: parameter '", name, "' is ", p.str(),
                    "; on a GPU the optimizer keeps f32 master weights");
      if (p.dim() >= 2) {
        TensorImpl& impl = p.impl();
        if (impl.bf16_copy && impl.bf16_copy->shape == p.shape())
          Tensor(impl.bf16_copy).copy_(p);  // keep the tensor that existing views share
        else
          impl.bf16_copy = p.detach().to(DType::bf16).impl_ptr();
      }
    }
    SERPENT_CHECK(!cfg.bf16_moments || p.dtype() == DType::f32, "AdamW: parameter '", name, "' is ", p.str(),
                  "; bf16 moments (optim.state_dtype bf16) need f32 parameters");
    const DType moments = cfg.bf16_moments ? DType::bf16 : p.dtype();
    slots_.push_back({name, p, zeros(p.shape(), moments, p.device()), zeros(p.shape(), moments, p.device()),
                      uses_weight_decay(name, p)});
  }
  if (device_.is_cuda()) step_device_ = zeros({}, DType::i64, device_);
}

void AdamW::step(double lr, double grad_scale) {
  if (device_.is_cuda()) {
    SERPENT_ON_CUDA(step_cuda(lr, nullptr, 0.0, grad_scale));
    return;
  }
  ++step_;
  for (Slot& s : slots_) {
    Tensor g = s.param.grad();
    if (!g.defined()) continue;
    const cpu::AdamWStep args{lr,         cfg_.beta1, cfg_.beta2, cfg_.eps, s.decay ? cfg_.weight_decay : 0.0,
                              grad_scale, step_};
    if (cfg_.bf16_moments) {
      cpu::adamw_update<float, bf16>(s.param.data<float>(), g.data<float>(), s.exp_avg.data<bf16>(),
                                     s.exp_avg_sq.data<bf16>(), s.param.numel(), args);
      continue;
    }
    dispatch_float(s.param.dtype(), "AdamW", [&](auto z) {
      using T = decltype(z);
      cpu::adamw_update<T>(s.param.data<T>(), g.data<T>(), s.exp_avg.data<T>(), s.exp_avg_sq.data<T>(), s.param.numel(),
                           args);
    });
  }
}

void AdamW::step(double lr, const Tensor& grad_norm, double max_norm) {
  SERPENT_CHECK(grad_norm.defined() && grad_norm.numel() == 1 && grad_norm.device() == device_,
                "AdamW::step: the gradient norm must be a one-element tensor on ", device_.str(), " (the parameters'",
                " device), got ", grad_norm.str());
  if (device_.is_cuda()) {
    SERPENT_CHECK(grad_norm.dtype() == DType::f32, "AdamW::step: on a GPU the gradient norm must be f32, got ",
                  grad_norm.str());
    SERPENT_ON_CUDA(step_cuda(lr, &grad_norm, max_norm, 1.0));
    return;
  }
  const double norm = grad_norm.item();
  if (!std::isfinite(norm)) return;
  step(lr, clip_scale(norm, max_norm));
}

#ifdef SERPENT_CUDA
void AdamW::step_cuda(double lr, const Tensor* grad_norm, double max_norm, double grad_scale) {
  std::vector<cuda::AdamWTensor> tensors;
  for (Slot& s : slots_) {
    Tensor g = s.param.grad();
    if (!g.defined()) continue;
    SERPENT_CHECK(g.dtype() == DType::f32 && g.device() == device_ && g.shape() == s.param.shape(),
                  "AdamW: gradient of '", s.name, "' is ", g.str(), ", expected f32", shape_str(s.param.shape()),
                  " on ", device_.str());
    const auto& copy = s.param.impl().bf16_copy;
    tensors.push_back({s.param.data<float>(), g.data<float>(), s.exp_avg.data_ptr(), s.exp_avg_sq.data_ptr(),
                       copy ? Tensor(copy).data_ptr() : nullptr, s.param.numel(), s.decay ? cfg_.weight_decay : 0.0});
  }
  const cuda::AdamWArgs args{lr,
                             cfg_.beta1,
                             cfg_.beta2,
                             cfg_.eps,
                             grad_norm ? grad_norm->data<float>() : nullptr,
                             max_norm,
                             grad_scale,
                             step_device_.data<int64_t>(),
                             cfg_.bf16_moments};
  cuda::adamw_update(tensors, args, device_.index);
}
#endif

int64_t AdamW::steps() const {
  return device_.is_cuda() ? int64_t(step_device_.item()) : step_;
}

NamedTensors AdamW::state() const {
  NamedTensors out;
  for (const Slot& s : slots_) {
    out.emplace_back(s.name + ".exp_avg", s.exp_avg);
    out.emplace_back(s.name + ".exp_avg_sq", s.exp_avg_sq);
  }
  return out;
}

void AdamW::load_state(const NamedTensors& state, int64_t steps) {
  auto find = [&](const std::string& key, const Tensor& like) {
    for (const auto& [k, v] : state)
      if (k == key) {
        SERPENT_CHECK(v.shape() == like.shape(), "optimizer state '", key, "' has shape ", shape_str(v.shape()),
                      ", expected ", shape_str(like.shape()));
        return v;
      }
    fail("optimizer state is missing '", key, "'");
  };
  for (Slot& s : slots_) {
    s.exp_avg.copy_(find(s.name + ".exp_avg", s.exp_avg));
    s.exp_avg_sq.copy_(find(s.name + ".exp_avg_sq", s.exp_avg_sq));
  }
  step_ = steps;
  if (device_.is_cuda()) step_device_.fill_(double(steps));
}

double grad_norm(const std::vector<Tensor>& params) {
  double total = 0;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    for (double x : g.to_vector<double>()) total += x * x;
  }
  return std::sqrt(total);
}

Tensor grad_norm_device(const std::vector<Tensor>& params) {
  const Device dev = params.empty() ? Device::cpu() : params.front().device();
  if (dev.is_cpu()) return full({}, grad_norm(params), DType::f32);
#ifdef SERPENT_CUDA
  std::vector<const float*> grads;
  std::vector<int64_t> numels;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    SERPENT_CHECK(g.dtype() == DType::f32 && g.device() == dev, "grad_norm_device: gradient ", g.str(),
                  " is not f32 on ", dev.str(), " like the other parameters'");
    grads.push_back(g.data<float>());
    numels.push_back(g.numel());
  }
  Tensor out = Tensor::empty({}, DType::f32, dev);
  cuda::grad_norm(grads, numels, out.data<float>(), dev.index);
  return out;
#else
  fail("grad_norm_device: parameters on ", dev.str(), " but this build of serpent has no CUDA backend");
#endif
}

double clip_scale(double norm, double max_norm) {
  if (max_norm <= 0 || !(norm > max_norm)) return 1.0;
  return max_norm / (norm + 1e-6);
}

}  // namespace serpent
