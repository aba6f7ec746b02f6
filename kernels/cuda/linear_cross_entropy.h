// cross_entropy(h @ w^T, targets) on the GPU in chunks of rows (kernels/cuda/linear_cross_entropy.cu);
// the CPU twin and the math are in kernels/cpu/linear_cross_entropy.h. The full (M, V) logits
// never exist: one (chunk_rows, V) buffer of the operand dtype is reused, and the softmax
// cross-entropy kernel overwrites it with dlogits in place.
//
// dt is the GEMM operand dtype of h and w: bf16 (w is then the bf16 copy of the f32 master
// weight) or f32. The loss, the count, and the gradient sums are f32.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace serpent::cuda {

// Logits per chunk when the caller picks no chunk size: 2^28 (512 MiB in bf16; for a 50280-token
// vocabulary about 5300 rows, so 8 x 2048 tokens take 4 chunks).
constexpr int64_t kLinearCrossEntropyChunkLogits = int64_t(1) << 28;

// h (M, D) and w (V, D) of dt; targets (M) of target_dt (i32 or i64) on the device, checked as
// kernels/cuda/index_check.h describes. Writes loss (one f32: the mean over counted rows, NaN if
// none) and count (one f32: rows whose target is not ignore_index). dh (M, D) and dw (V, D) f32
// receive the unscaled gradient sums, or are skipped when null.
void linear_cross_entropy_forward(const void* h, const void* w, DType dt, const void* targets, DType target_dt,
                                  int64_t M, int64_t D, int64_t V, int64_t ignore_index, int64_t chunk_rows,
                                  float* loss, float* count, float* dh, float* dw, int device);

// out = raw * (upstream / count), or 0 when count is 0. raw (n) f32; out (n) of out_dt (f32 or
// bf16); upstream and count are one-element f32 device tensors, read on the device.
void linear_cross_entropy_scale(const float* raw, void* out, DType out_dt, int64_t n, const float* upstream,
                                const float* count, int device);

}  // namespace serpent::cuda
