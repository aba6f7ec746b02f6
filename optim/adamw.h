// AdamW over a model's named parameters, with the Mamba recipe's parameter groups: no weight
// decay on A_log, D, biases and norm weights (every parameter with fewer than 2 dimensions, plus
// A_log).
#pragma once

#include <string>
#include <vector>

#include "layers/module.h"

namespace serpent {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

bool uses_weight_decay(const std::string& name, const Tensor& param);

class AdamW {
 public:
  AdamW(const NamedTensors& params, const AdamWConfig& cfg);

  // Applies one update with learning rate lr to every parameter that has a gradient, scaling the
  // gradients by grad_scale (1 unless clipping).
  void step(double lr, double grad_scale = 1.0);

  int64_t steps() const { return step_; }
  // Moments as named tensors "<param>.exp_avg" / "<param>.exp_avg_sq", for checkpoints.
  NamedTensors state() const;
  void load_state(const NamedTensors& state, int64_t steps);

 private:
  struct Slot {
    std::string name;
    Tensor param, exp_avg, exp_avg_sq;
    bool decay;
  };
  std::vector<Slot> slots_;
  AdamWConfig cfg_;
  int64_t step_ = 0;
};

// Global L2 norm over the gradients of params (those that have one).
double grad_norm(const std::vector<Tensor>& params);
// The factor that brings a gradient of norm `norm` down to max_norm (1 when already below).
double clip_scale(double norm, double max_norm);

}  // namespace serpent
