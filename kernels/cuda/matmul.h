// Device matrix products through cuBLAS (kernels/cuda/matmul.cu); the CPU twin is
// kernels/cpu/matmul.h with the same argument meaning. f32 runs true fp32 (no TF32), bf16 runs
// with fp32 accumulation, f64 in f64.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace serpent::cuda {

// A and B have dtype ab; C has dtype c (c may be f32 when ab is bf16: the product of bf16
// operands written in f32, as weight gradients are).
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const void* A, const void* B, void* C, DType ab,
          DType c, bool accumulate, int device);

}  // namespace serpent::cuda
