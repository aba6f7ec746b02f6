#include "core/creation.h"

#include "core/backend.h"
#include "core/cuda/convert.h"

namespace serpent {

namespace {

enum class Dist { normal, uniform };

// Fills on the host in double and converts, so the numbers match the device kernel exactly.
Tensor random_tensor(const Shape& shape, Dist dist, double a, double b, Generator& gen, DType dtype, Device device) {
  SERPENT_CHECK(is_floating(dtype), "random: expected a floating dtype, got ", dtype_name(dtype));
  const int64_t n = shape_numel(shape);
  const uint64_t start = gen.take(uint64_t(n));
  Tensor out = Tensor::empty(shape, dtype, device);
  if (device.is_cuda()) {
    SERPENT_ON_CUDA(dist == Dist::normal
                        ? cuda::fill_normal(out.data_ptr(), dtype, n, gen.seed, start, a, b, device.index)
                        : cuda::fill_uniform(out.data_ptr(), dtype, n, gen.seed, start, a, b, device.index));
    return out;
  }
  Tensor host = Tensor::empty(shape, DType::f64);
  double* p = host.data<double>();
#pragma omp parallel for if (n > (1 << 14))
  for (int64_t i = 0; i < n; ++i)
    p[i] = dist == Dist::normal ? philox::normal(gen.seed, start + uint64_t(i), a, b)
                                : philox::uniform(gen.seed, start + uint64_t(i), a, b);
  out.copy_(host);
  return out;
}

}  // namespace

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  t.fill_(value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}
Tensor ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}

Tensor arange(int64_t n, DType dtype, Device device) {
  SERPENT_CHECK(n >= 0, "arange: negative length ", n);
  Tensor host = Tensor::empty({n}, DType::i64);
  int64_t* p = host.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  return host.to(dtype).to(device);
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype, Device device, double mean, double stddev) {
  return random_tensor(shape, Dist::normal, mean, stddev, gen, dtype, device);
}

Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype, Device device) {
  return random_tensor(shape, Dist::uniform, lo, hi, gen, dtype, device);
}

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, DType dtype, Device device) {
  SERPENT_CHECK(int64_t(values.size()) == shape_numel(shape), "from_vector: ", values.size(), " values for shape ",
                shape_str(shape));
  Tensor host = Tensor::empty(shape, Tensor::type_dtype<T>());
  std::copy(values.begin(), values.end(), host.data<T>());
  return host.to(dtype).to(device);
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&, DType, Device);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&, DType, Device);
template Tensor from_vector<int32_t>(const std::vector<int32_t>&, const Shape&, DType, Device);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, DType, Device);

}  // namespace serpent
