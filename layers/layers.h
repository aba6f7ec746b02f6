// Building-block modules. Parameter names and shapes are PyTorch's (nn.Linear, nn.Embedding,
// nn.Conv1d with groups = channels), so state dicts cross over to Hugging Face unchanged.
#pragma once

#include <optional>
#include <utility>

#include "core/rng.h"
#include "layers/module.h"

namespace serpent {

// y = x @ weight^T; weight (out_features, in_features); x (..., in) -> (..., out).
// Initialized U(-1/sqrt(in), 1/sqrt(in)), as nn.Linear's default.
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, Generator& gen, DType dtype = DType::f32);
  Tensor forward(const Tensor& x) const;
  // Mamba's one biased projection, dt_proj, has its bias added inside the selective scan, so the
  // bias is registered here (for its name and initialization) but forward() does not add it.
  void register_bias(Tensor value) { register_parameter("bias", &bias, std::move(value)); }
  Tensor weight, bias;
};

// weight (num, dim), N(0, 0.02).
class Embedding : public Module {
 public:
  Embedding(int64_t num, int64_t dim, Generator& gen, DType dtype = DType::f32);
  Tensor forward(const Tensor& ids) const;  // (...) -> (..., dim)
  Tensor weight;
};

// weight (dim), ones. forward(h, residual) = add_rms_norm: {normed, residual_out}, normed in
// out_dtype when given (the mixed-precision path writes bf16 from an f32 residual stream).
class RMSNorm : public Module {
 public:
  RMSNorm(int64_t dim, double eps, DType dtype = DType::f32);
  std::pair<Tensor, Tensor> forward(const Tensor& h, const Tensor& residual,
                                    std::optional<DType> out_dtype = std::nullopt) const;
  Tensor weight;
  double eps;
};

// Depthwise causal conv over time: weight (channels, 1, width) and bias (channels), both
// U(-1/sqrt(width), 1/sqrt(width)) as nn.Conv1d(groups = channels).
class CausalConv1d : public Module {
 public:
  CausalConv1d(int64_t channels, int64_t width, bool with_bias, Generator& gen, DType dtype = DType::f32);
  Tensor forward(const Tensor& x, bool silu_activation) const;  // x (B, L, channels)
  Tensor weight, bias;
};

}  // namespace serpent
