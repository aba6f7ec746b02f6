#include "optim/adamw.h"

#include <cmath>

#include "core/creation.h"
#include "kernels/cpu/adamw.h"

namespace serpent {

bool uses_weight_decay(const std::string& name, const Tensor& param) {
  const auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return param.dim() >= 2 && !ends_with("A_log");
}

AdamW::AdamW(const NamedTensors& params, const AdamWConfig& cfg) : cfg_(cfg) {
  for (const auto& [name, p] : params)
    slots_.push_back({name, p, zeros(p.shape(), p.dtype(), p.device()), zeros(p.shape(), p.dtype(), p.device()),
                      uses_weight_decay(name, p)});
}

void AdamW::step(double lr, double grad_scale) {
  ++step_;
  for (Slot& s : slots_) {
    Tensor g = s.param.grad();
    if (!g.defined()) continue;
    SERPENT_CHECK(!s.param.is_cuda(), "AdamW: CUDA parameters need the CUDA optimizer kernel");
    const cpu::AdamWStep args{lr, cfg_.beta1, cfg_.beta2, cfg_.eps, s.decay ? cfg_.weight_decay : 0.0, grad_scale,
                              step_};
    dispatch_float(s.param.dtype(), "AdamW", [&](auto z) {
      using T = decltype(z);
      cpu::adamw_update<T>(s.param.data<T>(), g.data<T>(), s.exp_avg.data<T>(), s.exp_avg_sq.data<T>(),
                           s.param.numel(), args);
    });
  }
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

double clip_scale(double norm, double max_norm) {
  if (max_norm <= 0 || !(norm > max_norm)) return 1.0;
  return max_norm / (norm + 1e-6);
}

}  // namespace serpent
