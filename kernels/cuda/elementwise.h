// Device-side elementwise kernels and reductions (kernels/cuda/elementwise.cu); the CPU twins
// are in kernels/cpu/elementwise.h. f32, f64 and bf16 (computed in f32). n elements each.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "kernels/cpu/elementwise.h"

namespace serpent::cuda {

void binary(cpu::Binary op, const void* a, const void* b, void* out, int64_t n, DType dt, int device);
void unary(cpu::Unary op, const void* a, void* out, int64_t n, DType dt, int device);
void unary_backward(cpu::Unary op, const void* x, const void* dy, void* dx, int64_t n, DType dt, int device);
void scale(const void* a, double s, void* out, int64_t n, DType dt, int device);
// out: one element of dtype dt on the device; the sum is accumulated in f32 (f64 for f64).
void sum(const void* a, int64_t n, DType dt, void* out, int device);
// Columns [start, start + len) of each row of src (rows, cols) into dst (rows, len), or, with
// scatter, dst (rows, len) back into src's column range (other columns untouched).
void copy_columns(const void* src, void* dst, int64_t rows, int64_t cols, int64_t start, int64_t len, DType dt,
                  bool scatter, int device);

}  // namespace serpent::cuda
