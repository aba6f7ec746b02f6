// Causal depthwise conv1d with fused SiLU on the GPU (kernels/cuda/causal_conv1d.cu); the CPU twin and
// the math are in kernels/cpu/causal_conv1d.h. The activations x, out, dout and dx are f32 or bf16 (all
// the same dtype, x_dt); weight, bias and their gradients are f32. Widths 1 to kMaxConvWidth.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace serpent::cuda {

constexpr int64_t kMaxConvWidth = 4;

// x, out (B, L, E); weight (E, W); bias (E) or null.
void causal_conv1d_forward(const void* x, DType x_dt, const float* weight, const float* bias, void* out, int64_t B,
                           int64_t L, int64_t E, int64_t W, bool silu, int device);

// dout, dx (B, L, E); dweight (E, W) and dbias (E, or null) are overwritten, deterministically.
// The pre-activation is recomputed from x.
void causal_conv1d_backward(const void* x, DType x_dt, const float* weight, const float* bias, const void* dout,
                            void* dx, float* dweight, float* dbias, int64_t B, int64_t L, int64_t E, int64_t W,
                            bool silu, int device);

}  // namespace serpent::cuda
