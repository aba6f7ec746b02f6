// RMSNorm fused with the residual add, on the host.
//   residual_out = h + residual_in          (residual_in absent in the first layer)
//   normed       = residual_out * rstd * weight,  rstd = 1 / sqrt(mean(residual_out^2) + eps)
// Backward, with xhat = residual_out * rstd and dxhat = d_normed * weight:
//   d_input = rstd * (dxhat - xhat * mean(dxhat * xhat)) + d_residual_out
//   d_weight = sum over rows of d_normed * xhat
// d_input is the gradient of both h and residual_in (the add passes it through).
#pragma once

#include <cstdint>

namespace serpent::cpu {

// h, residual_in, normed, residual_out (M, D); weight (D); rstd (M). residual_in may be null.
template <class T>
void add_rms_norm_forward(const T* h, const T* residual_in, const T* weight, T* normed, T* residual_out, T* rstd,
                          int64_t M, int64_t D, double eps);

// residual_out, d_normed, d_input (M, D); d_residual_out (M, D) or null; weight, d_weight (D);
// rstd (M). d_weight is overwritten.
template <class T>
void add_rms_norm_backward(const T* residual_out, const T* weight, const T* rstd, const T* d_normed,
                           const T* d_residual_out, T* d_input, T* d_weight, int64_t M, int64_t D);

}  // namespace serpent::cpu
