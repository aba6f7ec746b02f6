// Device-side fills and dtype conversions (core/cuda/convert.cu). Launched on the device's
// current stream; pointers are device memory of n elements.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace serpent::cuda {

void fill(void* dst, DType dt, int64_t n, double value, int device);
void convert(void* dst, DType dst_dt, const void* src, DType src_dt, int64_t n, int device);
// Element i is philox::normal / philox::uniform of (seed, offset + i), computed in double.
void fill_normal(void* dst, DType dt, int64_t n, uint64_t seed, uint64_t offset, double mean, double stddev,
                 int device);
void fill_uniform(void* dst, DType dt, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi, int device);

}  // namespace serpent::cuda
