// RMSNorm fused with the residual add (kernels/cpu/rms_norm.h has the math; the GPU kernel is
// kernels/cuda/rms_norm.h).
#include "autograd/checks.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "kernels/cpu/rms_norm.h"
#include "kernels/cuda/rms_norm.h"

namespace serpent {

namespace {

#ifdef SERPENT_CUDA
// The GPU contract (ops.h): h f32 or bf16; residual, weight and residual_out f32; normed of
// out_dtype. The backward gives the residual an f32 gradient and h one in h's dtype.
std::pair<Tensor, Tensor> add_rms_norm_cuda(const Tensor& h, const Tensor& residual, const Tensor& weight, double eps,
                                            std::optional<DType> out_dtype) {
  const char* op = "add_rms_norm";
  const int64_t D = h.size(-1), M = h.numel() / D;
  const Device dev = h.device();
  const DType h_dt = h.dtype(), out_dt = out_dtype.value_or(h_dt);
  SERPENT_CHECK(h_dt == DType::f32 || h_dt == DType::bf16, op, ": on a GPU the input must be f32 or bf16, got ",
                h.str());
  SERPENT_CHECK(out_dt == DType::f32 || out_dt == DType::bf16, op,
                ": on a GPU the output dtype must be f32 or bf16, got ", dtype_name(out_dt));
  auto f32_on_device = [&](const char* name, const Tensor& t) {
    SERPENT_CHECK(t.dtype() == DType::f32 && t.device() == dev, op, ": ", name, " is ", t.str(), " but the input is ",
                  h.str(), "; on a GPU the ", name, " must be f32 on the input's device");
  };
  const bool has_residual = residual.defined();
  if (has_residual) {
    f32_on_device("residual", residual);
    checks::shape(op, "residual", residual, h.shape());
  }
  checks::defined(op, "weight", weight);
  f32_on_device("weight", weight);
  checks::shape(op, "weight", weight, {D});

  Tensor normed = Tensor::empty(h.shape(), out_dt, dev);
  Tensor residual_out = Tensor::empty(h.shape(), DType::f32, dev);
  Tensor rstd = Tensor::empty({M}, DType::f32, dev);
  cuda::add_rms_norm_forward(h.data_ptr(), h_dt, has_residual ? residual.data<float>() : nullptr, weight.data<float>(),
                             normed.data_ptr(), out_dt, residual_out.data<float>(), rstd.data<float>(), M, D, eps,
                             dev.index);
  autograd::record(op, {&normed, &residual_out}, {h, residual, weight},
                   [residual_out = residual_out.detach(), weight = weight.detach(), rstd, M, D, h_dt,
                    has_residual](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                     const Device dev = residual_out.device();
                     Tensor d_h = Tensor::empty(residual_out.shape(), h_dt, dev);
                     // With an f32 input one tensor serves both inputs, as on the cpu.
                     Tensor d_residual = has_residual && h_dt != DType::f32
                                             ? Tensor::empty(residual_out.shape(), DType::f32, dev)
                                             : Tensor();
                     Tensor d_weight = Tensor::empty({D}, DType::f32, dev);
                     cuda::add_rms_norm_backward(residual_out.data<float>(), weight.data<float>(), rstd.data<float>(),
                                                 g[0].data_ptr(), g[0].dtype(), g[1].data<float>(),
                                                 d_residual.defined() ? d_residual.data<float>() : nullptr,
                                                 d_h.data_ptr(), h_dt, d_weight.data<float>(), M, D, dev.index);
                     if (has_residual && !d_residual.defined()) d_residual = d_h;
                     return {d_h, d_residual, d_weight};
                   });
  return {normed, residual_out};
}
#endif

}  // namespace

std::pair<Tensor, Tensor> add_rms_norm(const Tensor& h, const Tensor& residual, const Tensor& weight, double eps,
                                       std::optional<DType> out_dtype) {
  const char* op = "add_rms_norm";
  checks::floating(op, "input", h);
  SERPENT_CHECK(h.dim() >= 1, op, ": input must have at least one dimension, got ", h.str());
  checks::nonempty(op, "input", h);
  if (h.is_cuda()) {
    SERPENT_ON_CUDA(return add_rms_norm_cuda(h, residual, weight, eps, out_dtype));
  }
  const int64_t D = h.size(-1), M = h.numel() / D;
  if (residual.defined()) {
    checks::like(op, "residual", residual, "input", h);
    checks::shape(op, "residual", residual, h.shape());
  }
  checks::like(op, "weight", weight, "input", h);
  checks::shape(op, "weight", weight, {D});
  SERPENT_CHECK(!out_dtype || *out_dtype == h.dtype(), op, ": on the cpu the output dtype must be the input's (",
                dtype_name(h.dtype()), "), got ", dtype_name(*out_dtype));
  Tensor normed = Tensor::empty(h.shape(), h.dtype(), h.device());
  Tensor residual_out = Tensor::empty(h.shape(), h.dtype(), h.device());
  Tensor rstd = Tensor::empty({M}, h.dtype(), h.device());
  dispatch_float(h.dtype(), op, [&](auto z) {
    using T = decltype(z);
    cpu::add_rms_norm_forward<T>(h.data<T>(), residual.defined() ? residual.data<T>() : nullptr, weight.data<T>(),
                                 normed.data<T>(), residual_out.data<T>(), rstd.data<T>(), M, D, eps);
  });
  const bool has_residual = residual.defined();
  autograd::record(op, {&normed, &residual_out}, {h, residual, weight},
                   [residual_out = residual_out.detach(), weight, rstd, M, D,
                    has_residual](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                     Tensor d_input = Tensor::empty(residual_out.shape(), g[0].dtype(), g[0].device());
                     Tensor d_weight = Tensor::empty({D}, g[0].dtype(), g[0].device());
                     dispatch_float(g[0].dtype(), "add_rms_norm backward", [&](auto z) {
                       using T = decltype(z);
                       cpu::add_rms_norm_backward<T>(residual_out.data<T>(), weight.data<T>(), rstd.data<T>(),
                                                     g[0].data<T>(), g[1].data<T>(), d_input.data<T>(),
                                                     d_weight.data<T>(), M, D);
                     });
                     return {d_input, has_residual ? d_input : Tensor(), d_weight};
                   });
  return {normed, residual_out};
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  return add_rms_norm(x, Tensor(), weight, eps).first;
}

}  // namespace serpent
