// Causal depthwise conv1d with optional fused SiLU (kernels/cpu/causal_conv1d.h has the math; the GPU
// kernel is kernels/cuda/causal_conv1d.h).
#include "autograd/checks.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "kernels/cpu/causal_conv1d.h"
#include "kernels/cuda/causal_conv1d.h"

namespace serpent {

namespace {

#ifdef SERPENT_CUDA
// The GPU contract (ops.h): x and out f32 or bf16; weight, bias and their gradients f32.
Tensor causal_conv1d_cuda(const Tensor& x, const Tensor& weight, const Tensor& bias, bool silu_activation) {
  const char* op = "causal_conv1d";
  const int64_t B = x.size(0), L = x.size(1), E = x.size(2), W = weight.size(1);
  const Device dev = x.device();
  SERPENT_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::bf16, op,
                ": on a GPU the input must be f32 or bf16, got ", x.str());
  auto f32_on_device = [&](const char* name, const Tensor& t) {
    SERPENT_CHECK(t.dtype() == DType::f32 && t.device() == dev, op, ": ", name, " is ", t.str(), " but the input is ",
                  x.str(), "; on a GPU the ", name, " must be f32 on the input's device");
  };
  f32_on_device("weight", weight);
  if (bias.defined()) f32_on_device("bias", bias);
  SERPENT_CHECK(W <= cuda::kMaxConvWidth, op, ": the CUDA kernel supports kernel widths 1 to ", cuda::kMaxConvWidth,
                ", got weight ", shape_str(weight.shape()));
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);
  cuda::causal_conv1d_forward(x.data_ptr(), x.dtype(), weight.data<float>(),
                              bias.defined() ? bias.data<float>() : nullptr, out.data_ptr(), B, L, E, W,
                              silu_activation, dev.index);
  autograd::record(op, out, {x, weight, bias},
                   [x = x.detach(), weight = weight.detach(), bias = bias.defined() ? bias.detach() : Tensor(), B, L, E,
                    W, silu_activation](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                     const Device dev = x.device();
                     Tensor dx = Tensor::empty(x.shape(), x.dtype(), dev);
                     Tensor dw = Tensor::empty({E, W}, DType::f32, dev);
                     Tensor db = bias.defined() ? Tensor::empty({E}, DType::f32, dev) : Tensor();
                     SERPENT_CHECK(g[0].dtype() == x.dtype(), "causal_conv1d backward: output gradient ", g[0].str(),
                                   " does not match the input ", x.str());
                     cuda::causal_conv1d_backward(
                         x.data_ptr(), x.dtype(), weight.data<float>(), bias.defined() ? bias.data<float>() : nullptr,
                         g[0].data_ptr(), dx.data_ptr(), dw.data<float>(), db.defined() ? db.data<float>() : nullptr, B,
                         L, E, W, silu_activation, dev.index);
                     return {dx, dw, db};
                   });
  return out;
}
#endif

}  // namespace

Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, bool silu_activation) {
  const char* op = "causal_conv1d";
  checks::floating(op, "input", x);
  checks::rank(op, "input", x, 3);
  checks::nonempty(op, "input", x);
  const int64_t B = x.size(0), L = x.size(1), E = x.size(2);
  checks::floating(op, "weight", weight);
  checks::rank(op, "weight", weight, 2);
  SERPENT_CHECK(weight.size(0) == E, op, ": weight ", shape_str(weight.shape()), " has ", weight.size(0),
                " channels but the input (B, L, E) = ", shape_str(x.shape()), " has ", E);
  const int64_t W = weight.size(1);
  SERPENT_CHECK(W >= 1, op, ": kernel width must be at least 1, got weight ", shape_str(weight.shape()));
  if (bias.defined()) checks::shape(op, "bias", bias, {E});
  if (x.is_cuda()) {
    SERPENT_ON_CUDA(return causal_conv1d_cuda(x, weight, bias, silu_activation));
  }
  checks::like(op, "weight", weight, "input", x);
  if (bias.defined()) checks::like(op, "bias", bias, "input", x);
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
