// RMSNorm fused with the residual add on the GPU (kernels/cuda/rms_norm.cu); the CPU twin and
// the math are in kernels/cpu/rms_norm.h. Mixed precision: the residual stream, the weight, rstd
// and every reduction are f32; the input h and the normed output may each be f32 or bf16.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace serpent::cuda {

// h (M, D) of h_dt; residual (M, D) f32 or null; weight (D) f32;
// normed (M, D) of out_dt; residual_out (M, D) f32; rstd (M) f32.
void add_rms_norm_forward(const void* h, DType h_dt, const float* residual, const float* weight, void* normed,
                          DType out_dt, float* residual_out, float* rstd, int64_t M, int64_t D, double eps, int device);

// residual_out (M, D), weight (D), rstd (M): saved by the forward. d_normed (M, D) of dn_dt;
// d_residual_out (M, D) f32 or null. Writes d_input = d(residual_out) into d_residual (f32) and/or
// d_h (h_dt), either of which may be null, and d_weight (D) f32 (overwritten, deterministic).
void add_rms_norm_backward(const float* residual_out, const float* weight, const float* rstd, const void* d_normed,
                           DType dn_dt, const float* d_residual_out, float* d_residual, void* d_h, DType h_dt,
                           float* d_weight, int64_t M, int64_t D, int device);

}  // namespace serpent::cuda
