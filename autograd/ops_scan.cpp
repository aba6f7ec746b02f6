// The selective scan as one autograd node (kernels/cpu/selective_scan.h has the math).
#include "autograd/checks.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "kernels/cpu/selective_scan.h"

namespace serpent {

namespace {

struct ScanInputs {
  Tensor u, delta, A, Bm, Cm, D, z, delta_bias;
  bool delta_softplus;
  int64_t B, L, E, N;

  template <class T>
  cpu::ScanParams<T> params() const {
    auto ptr = [](const Tensor& t) -> const T* { return t.defined() ? t.data<T>() : nullptr; };
    return {ptr(u), ptr(delta), ptr(A), ptr(Bm), ptr(Cm), ptr(D), ptr(z), ptr(delta_bias), delta_softplus,
            B, L, E, N};
  }
};

}  // namespace

ScanOutput selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& Bm, const Tensor& Cm,
                          const Tensor& D, const Tensor& z, const Tensor& delta_bias, bool delta_softplus) {
  const char* op = "selective_scan";
  checks::floating(op, "u", u);
  checks::rank(op, "u", u, 3);
  checks::nonempty(op, "u", u);
  const int64_t B = u.size(0), L = u.size(1), E = u.size(2);
  checks::rank(op, "A", A, 2);
  const int64_t N = A.size(1);
  SERPENT_CHECK(N >= 1, op, ": A ", shape_str(A.shape()), " must have at least one state per channel");
  checks::like(op, "delta", delta, "u", u);
  checks::shape(op, "delta", delta, {B, L, E});
  checks::like(op, "A", A, "u", u);
  checks::shape(op, "A", A, {E, N});
  checks::like(op, "B", Bm, "u", u);
  checks::shape(op, "B", Bm, {B, L, N});
  checks::like(op, "C", Cm, "u", u);
  checks::shape(op, "C", Cm, {B, L, N});
  if (D.defined()) {
    checks::like(op, "D", D, "u", u);
    checks::shape(op, "D", D, {E});
  }
  if (z.defined()) {
    checks::like(op, "z", z, "u", u);
    checks::shape(op, "z", z, {B, L, E});
  }
  if (delta_bias.defined()) {
    checks::like(op, "delta_bias", delta_bias, "u", u);
    checks::shape(op, "delta_bias", delta_bias, {E});
  }
  SERPENT_CHECK(!u.is_cuda(), op, ": no CUDA kernel in this build");

  auto in = std::make_shared<ScanInputs>(ScanInputs{u.detach(), delta.detach(), A.detach(), Bm.detach(), Cm.detach(),
                                                    D.defined() ? D.detach() : Tensor(),
                                                    z.defined() ? z.detach() : Tensor(),
                                                    delta_bias.defined() ? delta_bias.detach() : Tensor(),
                                                    delta_softplus, B, L, E, N});
  Tensor y = Tensor::empty({B, L, E}, u.dtype(), u.device());
  Tensor last = Tensor::empty({B, E, N}, u.dtype(), u.device());
  dispatch_float(u.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    cpu::selective_scan_forward<T>(in->params<T>(), y.data<T>(), last.data<T>());
  });
  autograd::record(op, y, {u, delta, A, Bm, Cm, D, z, delta_bias},
                   [in](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                     auto like = [](const Tensor& t) {
                       return t.defined() ? Tensor::empty(t.shape(), t.dtype(), t.device()) : Tensor();
                     };
                     Tensor du = like(in->u), ddelta = like(in->delta), dA = like(in->A), dB = like(in->Bm),
                            dC = like(in->Cm), dD = like(in->D), dz = like(in->z), dbias = like(in->delta_bias);
                     dispatch_float(in->u.dtype(), "selective_scan backward", [&](auto zero) {
                       using T = decltype(zero);
                       auto ptr = [](Tensor& t) -> T* { return t.defined() ? t.data<T>() : nullptr; };
                       cpu::selective_scan_backward<T>(
                           in->params<T>(), g[0].data<T>(),
                           {ptr(du), ptr(ddelta), ptr(dA), ptr(dB), ptr(dC), ptr(dD), ptr(dz), ptr(dbias)});
                     });
                     return {du, ddelta, dA, dB, dC, dD, dz, dbias};
                   });
  return {y, last};
}

}  // namespace serpent
