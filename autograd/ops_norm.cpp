// RMSNorm fused with the residual add (kernels/cpu/rms_norm.h has the math).
#include "autograd/checks.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "kernels/cpu/rms_norm.h"

namespace serpent {

std::pair<Tensor, Tensor> add_rms_norm(const Tensor& h, const Tensor& residual, const Tensor& weight, double eps,
                                       std::optional<DType> out_dtype) {
  const char* op = "add_rms_norm";
  checks::floating(op, "input", h);
  SERPENT_CHECK(h.dim() >= 1, op, ": input must have at least one dimension, got ", h.str());
  checks::nonempty(op, "input", h);
  const int64_t D = h.size(-1), M = h.numel() / D;
  if (residual.defined()) {
    checks::like(op, "residual", residual, "input", h);
    checks::shape(op, "residual", residual, h.shape());
  }
  checks::like(op, "weight", weight, "input", h);
  checks::shape(op, "weight", weight, {D});
  SERPENT_CHECK(!h.is_cuda(), op, ": no CUDA kernel in this build");
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

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) { return add_rms_norm(x, Tensor(), weight, eps).first; }

}  // namespace serpent
