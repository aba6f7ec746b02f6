// Elementwise ops, reductions to a scalar, casts and in-place updates.
#include "autograd/checks.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/elementwise.h"

namespace serpent {

namespace {

Tensor empty_like(const Tensor& t) {
  return Tensor::empty(t.shape(), t.dtype(), t.device());
}

void run_binary(const char* name, cpu::Binary op, const Tensor& a, const Tensor& b, Tensor& out) {
  checks::floating(name, "a", a);
  checks::like(name, "b", b, "a", a);
  checks::same_shape(name, a, b);
  if (a.is_cuda()) {
    SERPENT_ON_CUDA(
        cuda::binary(op, a.data_ptr(), b.data_ptr(), out.data_ptr(), a.numel(), a.dtype(), a.device().index));
    return;
  }
  dispatch_float(a.dtype(), name, [&](auto z) {
    using T = decltype(z);
    cpu::binary<T>(op, a.data<T>(), b.data<T>(), out.data<T>(), a.numel());
  });
}

Tensor binary_op(const char* name, cpu::Binary op, const Tensor& a, const Tensor& b) {
  checks::defined(name, "a", a);
  Tensor out = empty_like(a);
  run_binary(name, op, a, b, out);
  return out;
}

void run_unary(const char* name, cpu::Unary op, const Tensor& a, Tensor& out) {
  if (a.is_cuda()) {
    SERPENT_ON_CUDA(cuda::unary(op, a.data_ptr(), out.data_ptr(), a.numel(), a.dtype(), a.device().index));
    return;
  }
  dispatch_float(a.dtype(), name, [&](auto z) {
    using T = decltype(z);
    cpu::unary<T>(op, a.data<T>(), out.data<T>(), a.numel());
  });
}

Tensor unary_backward(const char* name, cpu::Unary op, const Tensor& x, const Tensor& dy) {
  Tensor dx = empty_like(x);
  if (x.is_cuda()) {
    SERPENT_ON_CUDA(
        cuda::unary_backward(op, x.data_ptr(), dy.data_ptr(), dx.data_ptr(), x.numel(), x.dtype(), x.device().index));
    return dx;
  }
  dispatch_float(x.dtype(), name, [&](auto z) {
    using T = decltype(z);
    cpu::unary_backward<T>(op, x.data<T>(), dy.data<T>(), dx.data<T>(), x.numel());
  });
  return dx;
}

Tensor unary_op(const char* name, cpu::Unary op, const Tensor& a) {
  checks::floating(name, "input", a);
  Tensor out = empty_like(a);
  run_unary(name, op, a, out);
  autograd::record(name, out, {a}, [name, op, a](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    return {unary_backward(name, op, a, g[0])};
  });
  return out;
}

void run_scale(const Tensor& a, double s, Tensor& out) {
  if (a.is_cuda()) {
    SERPENT_ON_CUDA(cuda::scale(a.data_ptr(), s, out.data_ptr(), a.numel(), a.dtype(), a.device().index));
    return;
  }
  dispatch_float(a.dtype(), "scale", [&](auto z) {
    using T = decltype(z);
    cpu::scale<T>(a.data<T>(), T(s), out.data<T>(), a.numel());
  });
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_op("add", cpu::Binary::add, a, b);
  autograd::record("add", out, {a, b}, [](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    return {g[0], g[0]};
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_op("sub", cpu::Binary::sub, a, b);
  autograd::record("sub", out, {a, b}, [](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    return {g[0], scale(g[0], -1.0)};
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_op("mul", cpu::Binary::mul, a, b);
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  autograd::record("mul", out, {a, b}, [a, b, need_a, need_b](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    return {need_a ? mul(g[0], b) : Tensor(), need_b ? mul(g[0], a) : Tensor()};
  });
  return out;
}

Tensor scale(const Tensor& a, double s) {
  checks::floating("scale", "input", a);
  Tensor out = empty_like(a);
  run_scale(a, s, out);
  autograd::record("scale", out, {a},
                   [s](const std::vector<Tensor>& g) -> std::vector<Tensor> { return {scale(g[0], s)}; });
  return out;
}

Tensor exp(const Tensor& a) {
  return unary_op("exp", cpu::Unary::exp, a);
}
Tensor silu(const Tensor& a) {
  return unary_op("silu", cpu::Unary::silu, a);
}
Tensor softplus(const Tensor& a) {
  return unary_op("softplus", cpu::Unary::softplus, a);
}

Tensor sum(const Tensor& a) {
  checks::floating("sum", "input", a);
  Tensor out = Tensor::empty({}, a.dtype(), a.device());
  if (a.is_cuda()) {
    SERPENT_ON_CUDA(cuda::sum(a.data_ptr(), a.numel(), a.dtype(), out.data_ptr(), a.device().index));
  } else {
    dispatch_float(a.dtype(), "sum", [&](auto z) {
      using T = decltype(z);
      *out.data<T>() = T(cpu::sum<T>(a.data<T>(), a.numel()));
    });
  }
  Shape shape = a.shape();
  autograd::record("sum", out, {a}, [shape](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    // d sum / d a_i = 1: broadcast the scalar gradient (read once on the host).
    Tensor ones_like = Tensor::empty(shape, g[0].dtype(), g[0].device());
    ones_like.fill_(g[0].item());
    return {ones_like};
  });
  return out;
}

Tensor mean(const Tensor& a) {
  checks::nonempty("mean", "input", a);
  return scale(sum(a), 1.0 / double(a.numel()));
}

Tensor cast(const Tensor& a, DType dtype) {
  checks::floating("cast", "input", a);
  SERPENT_CHECK(is_floating(dtype), "cast: target dtype must be floating, got ", dtype_name(dtype));
  Tensor out = a.detach().to(dtype);
  if (out.same(a)) out = a.clone();
  DType from = a.dtype();
  autograd::record("cast", out, {a},
                   [from](const std::vector<Tensor>& g) -> std::vector<Tensor> { return {g[0].to(from)}; });
  return out;
}

void add_(Tensor& dst, const Tensor& src) {
  run_binary("add_", cpu::Binary::add, dst, src, dst);
}

void scale_(Tensor& dst, double s) {
  checks::floating("scale_", "input", dst);
  run_scale(dst, s, dst);
}

}  // namespace serpent
