// Deterministic reduction of per-block partial sums (kernels/cuda/partials.cu). Kernels that
// reduce over rows (the weight gradients of RMSNorm and conv1d) write one partial row per block
// instead of using float atomics; this adds those rows in a fixed order, so the result is the
// same bits on every run.
#pragma once

#include <cstdint>

namespace serpent::cuda {

// out[c] = sum over p < parts of partials[p * stride + c], for c < cols. f32, device pointers.
void sum_partials(const float* partials, int64_t parts, int64_t stride, int64_t cols, float* out, int device);

}  // namespace serpent::cuda
