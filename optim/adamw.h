// AdamW over a model's named parameters, with the Mamba recipe's parameter groups: no weight
// decay on A_log, D, biases and norm weights (every parameter with fewer than 2 dimensions, plus
// A_log). The same class runs on the cpu (kernels/cpu/adamw.h) and on a GPU
// (kernels/cuda/adamw.h: all parameters in a few launches, clipping decided on the device).
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
  // Moments stored in bf16 (optim.state_dtype bf16): 4 bytes per parameter instead of 8 (f32
  // parameters only); each update reads them into f32 and rounds the new values once.
  bool bf16_moments = false;
};

bool uses_weight_decay(const std::string& name, const Tensor& param);

class AdamW {
 public:
  // Every parameter must live on one device; the moments are kept there. On a GPU the parameters
  // must be f32 (the master weights), and every parameter with 2 or more dimensions gets a bf16
  // copy in TensorImpl::bf16_copy, which mixed-precision matmuls read and every update refreshes.
  AdamW(const NamedTensors& params, const AdamWConfig& cfg);

  // Applies one update with learning rate lr to every parameter that has a gradient, scaling the
  // gradients by grad_scale (1 unless clipping).
  void step(double lr, double grad_scale = 1.0);
  // Applies one update with the gradients clipped to max_norm (<= 0: no clipping), given their
  // global norm as a one-element tensor on the parameters' device (grad_norm_device): the scale is
  // clip_scale(norm, max_norm), and a norm that is not finite skips the step entirely
  // (parameters, moments, bf16 copies and the step count stay as they were). On a GPU all of this
  // is decided on the device, so the call never waits for it.
  void step(double lr, const Tensor& grad_norm, double max_norm);

  // Completed updates. On a GPU the count lives on the device (skipped steps are not counted
  // there), so this waits for the device: call it for checkpoints, not every step.
  int64_t steps() const;
  Device device() const { return device_; }
  // Moments as named tensors "<param>.exp_avg" / "<param>.exp_avg_sq", for checkpoints (bf16 with
  // bf16_moments; load_state takes either dtype, so a run may change optim.state_dtype on resume).
  NamedTensors state() const;
  void load_state(const NamedTensors& state, int64_t steps);

 private:
  struct Slot {
    std::string name;
    Tensor param, exp_avg, exp_avg_sq;
    bool decay;
  };
  void step_cuda(double lr, const Tensor* grad_norm, double max_norm, double grad_scale);

  std::vector<Slot> slots_;
  AdamWConfig cfg_;
  Device device_;
  int64_t step_ = 0;    // on the cpu
  Tensor step_device_;  // on a GPU: i64 [] holding the completed updates
};

// Global L2 norm over the gradients of params (those that have one), computed on the host.
double grad_norm(const std::vector<Tensor>& params);
// The same norm as a one-element f32 tensor on the parameters' device; on a GPU it is computed
// there (deterministically) and nothing waits for it.
Tensor grad_norm_device(const std::vector<Tensor>& params);
// The factor that brings a gradient of norm `norm` down to max_norm (1 when already below).
double clip_scale(double norm, double max_norm);

}  // namespace serpent
