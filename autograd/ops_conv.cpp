// Causal depthwise conv1d with optional fused SiLU (kernels/cpu/conv1d.h has the math).
#include "autograd/checks.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "kernels/cpu/conv1d.h"

namespace serpent {

Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, bool silu_activation) {
  const char* op = "causal_conv1d";
  checks::floating(op, "input", x);
  checks::rank(op, "input", x, 3);
  checks::nonempty(op, "input", x);
  const int64_t B = x.size(0), L = x.size(1), E = x.size(2);
  checks::like(op, "weight", weight, "input", x);
  checks::rank(op, "weight", weight, 2);
  SERPENT_CHECK(weight.size(0) == E, op, ": weight ", shape_str(weight.shape()), " has ", weight.size(0),
                " channels but the input (B, L, E) = ", shape_str(x.shape()), " has ", E);
  const int64_t W = weight.size(1);
  SERPENT_CHECK(W >= 1, op, ": kernel width must be at least 1, got weight ", shape_str(weight.shape()));
  if (bias.defined()) {
    checks::like(op, "bias", bias, "input", x);
    checks::shape(op, "bias", bias, {E});
  }
  SERPENT_CHECK(!x.is_cuda(), op, ": no CUDA kernel in this build");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch_float(x.dtype(), op, [&](auto z) {
    using T = decltype(z);
    cpu::causal_conv1d_forward<T>(x.data<T>(), weight.data<T>(), bias.defined() ? bias.data<T>() : nullptr,
                                  out.data<T>(), B, L, E, W, silu_activation);
  });
  autograd::record(op, out, {x, weight, bias},
                   [x, weight, bias, B, L, E, W, silu_activation](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                     Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
                     Tensor dw = Tensor::empty(weight.shape(), x.dtype(), x.device());
                     Tensor db = bias.defined() ? Tensor::empty({E}, x.dtype(), x.device()) : Tensor();
                     dispatch_float(x.dtype(), "causal_conv1d backward", [&](auto z) {
                       using T = decltype(z);
                       cpu::causal_conv1d_backward<T>(x.data<T>(), weight.data<T>(),
                                                      bias.defined() ? bias.data<T>() : nullptr, g[0].data<T>(),
                                                      dx.data<T>(), dw.data<T>(), db.defined() ? db.data<T>() : nullptr,
                                                      B, L, E, W, silu_activation);
                     });
                     return {dx, dw, db};
                   });
  return out;
}

}  // namespace serpent
