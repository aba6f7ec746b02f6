// Tensor factories. Random draws come from a Generator (core/rng.h) and are identical on every
// device for the same seed and offset.
#pragma once

#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace serpent {

Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device::cpu());
Tensor arange(int64_t n, DType dtype = DType::i64, Device device = Device::cpu());  // 0 .. n-1
Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::f32, Device device = Device::cpu(),
             double mean = 0.0, double stddev = 1.0);
Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype = DType::f32,
               Device device = Device::cpu());

// A tensor holding a copy of host values (converted to dtype), on `device`.
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, DType dtype = Tensor::type_dtype<T>(),
                   Device device = Device::cpu());

}  // namespace serpent
