#include "layers/layers.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"

namespace serpent {

Linear::Linear(int64_t in_features, int64_t out_features, Generator& gen, DType dtype) {
  const double bound = 1.0 / std::sqrt(double(in_features));
  register_parameter("weight", &weight, uniform({out_features, in_features}, -bound, bound, gen, dtype));
}

Tensor Linear::forward(const Tensor& x) const {
  SERPENT_CHECK(x.dim() >= 1, "Linear: input must have at least one dimension, got ", x.str());
  Shape out_shape = x.shape();
  out_shape.back() = weight.size(0);
  return reshape(linear(reshape(x, {-1, x.size(-1)}), weight), out_shape);
}

Embedding::Embedding(int64_t num, int64_t dim, Generator& gen, DType dtype) {
  register_parameter("weight", &weight, randn({num, dim}, gen, dtype, Device::cpu(), 0.0, 0.02));
}

Tensor Embedding::forward(const Tensor& ids) const {
  return embedding(weight, ids);
}

RMSNorm::RMSNorm(int64_t dim, double eps_, DType dtype) : eps(eps_) {
  register_parameter("weight", &weight, ones({dim}, dtype));
}

std::pair<Tensor, Tensor> RMSNorm::forward(const Tensor& h, const Tensor& residual,
                                           std::optional<DType> out_dtype) const {
  return add_rms_norm(h, residual, weight, eps, out_dtype);
}

CausalConv1d::CausalConv1d(int64_t channels, int64_t width, bool with_bias, Generator& gen, DType dtype) {
  const double bound = 1.0 / std::sqrt(double(width));
  register_parameter("weight", &weight, uniform({channels, 1, width}, -bound, bound, gen, dtype));
  if (with_bias) register_parameter("bias", &bias, uniform({channels}, -bound, bound, gen, dtype));
}

Tensor CausalConv1d::forward(const Tensor& x, bool silu_activation) const {
  return causal_conv1d(x, reshape(weight, {weight.size(0), weight.size(2)}), bias, silu_activation);
}

}  // namespace serpent
