// AdamW over many f32 tensors in a few launches, and the global gradient norm, on the GPU
// (kernels/cuda/adamw.cu). The update is kernels/cpu/adamw.h's, in the same order of operations;
// what the host would decide per step (the clip factor, whether the gradients are finite, the
// bias corrections of the step count) is decided on the device from device scalars, so a training
// step never waits for the GPU.
#pragma once

#include <cstdint>
#include <vector>

namespace serpent::cuda {

// One parameter: n elements of param and grad (f32), exp_avg and exp_avg_sq (f32, or bf16 when
// AdamWArgs::bf16_moments), plus the bf16 copy that mixed-precision matmuls read (refreshed from
// the updated param), or null.
struct AdamWTensor {
  float* param;
  const float* grad;
  void* exp_avg;
  void* exp_avg_sq;
  void* bf16_copy;
  int64_t n;
  double weight_decay;
};

struct AdamWArgs {
  double lr, beta1, beta2, eps;
  // Where the gradient scale comes from. With grad_norm (a one-element f32 device tensor) the
  // scale is max_norm / (norm + 1e-6) when norm > max_norm > 0, else 1, and a norm that is not
  // finite skips the whole update: parameters, moments, copies and the step count stay as they
  // were. Without it, grad_scale is used and the update always happens.
  const float* grad_norm;
  double max_norm;
  double grad_scale;
  // Completed updates (one i64 on the device): the update uses step + 1 for the bias corrections
  // and then increments it (unless skipped).
  int64_t* step;
  // The moments are stored in bf16 (optim.state_dtype): read into f32, updated, rounded back.
  bool bf16_moments = false;
};

void adamw_update(const std::vector<AdamWTensor>& tensors, const AdamWArgs& args, int device);

// out (one f32 on the device) = sqrt(sum over the tensors of sum of g^2), deterministic: per-block
// partial sums, then one block adds them in order (in f64).
void grad_norm(const std::vector<const float*>& grads, const std::vector<int64_t>& numels, float* out, int device);

}  // namespace serpent::cuda
