// The selective scan as one autograd node (kernels/cpu/selective_scan.h has the math).
#include "autograd/checks.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "kernels/cpu/selective_scan.h"
#include "kernels/cuda/selective_scan.h"

namespace serpent {

namespace {

struct ScanInputs {
  Tensor u, delta, A, Bm, Cm, D, z, delta_bias;
  bool delta_softplus;
  int64_t B, L, E, N;

  template <class T>
  cpu::ScanParams<T> params() const {
    auto ptr = [](const Tensor& t) -> const T* { return t.defined() ? t.data<T>() : nullptr; };
    return {ptr(u), ptr(delta), ptr(A), ptr(Bm), ptr(Cm), ptr(D), ptr(z), ptr(delta_bias), delta_softplus, B, L, E, N};
  }
};

#ifdef SERPENT_CUDA
const void* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data_ptr() : nullptr;
}
const float* fptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<float>() : nullptr;
}

// The GPU path: the forward keeps the state at every segment start (32 steps for N <= 16: 1/32
// of the states, 50 MB in f32 at (8, 1536, 2048, 16)) and each chunk's sum of delta for the backward,
// which recomputes everything else.
ScanOutput selective_scan_cuda(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& Bm,
                               const Tensor& Cm, const Tensor& D, const Tensor& z, const Tensor& delta_bias,
                               bool delta_softplus, const RecomputeFn& recompute_delta) {
  const int64_t B = u.size(0), L = u.size(1), E = u.size(2), N = A.size(1);
  const Device dev = u.device();
  const cuda::SelectiveScanGeometry geo = cuda::selective_scan_geometry(B, L, E, N, dev.index);
  const Tensor su = u.detach(), sdelta = delta.detach(), sA = A.detach(), sB = Bm.detach(), sC = Cm.detach();
  const Tensor sD = D.defined() ? D.detach() : Tensor(), sz = z.defined() ? z.detach() : Tensor();
  const Tensor sbias = delta_bias.defined() ? delta_bias.detach() : Tensor();
  const cuda::ScanArgs args{su.data_ptr(),
                            sdelta.data_ptr(),
                            sA.data<float>(),
                            sB.data_ptr(),
                            sC.data_ptr(),
                            fptr_or_null(sD),
                            ptr_or_null(sz),
                            fptr_or_null(sbias),
                            delta_softplus,
                            B,
                            L,
                            E,
                            N,
                            u.dtype()};
  Tensor y = Tensor::empty({B, L, E}, u.dtype(), dev);
  Tensor last = Tensor::empty({B, E, N}, DType::f32, dev);
  Tensor checkpoints = Tensor::empty({B, geo.segments, E, N}, DType::f32, dev);
  Tensor chunk_delta = Tensor::empty({B, geo.chunks, E}, DType::f32, dev);
  cuda::selective_scan_forward(args, y.data_ptr(), last.data<float>(), checkpoints.data<float>(),
                               chunk_delta.data<float>(), dev.index);
  // Kept for backward: delta itself, or the means to compute it again.
  const Tensor kept_delta = recompute_delta ? Tensor() : sdelta;
  autograd::record("selective_scan", y, {u, delta, A, Bm, Cm, D, z, delta_bias},
                   [args, su, kept_delta, recompute_delta, sA, sB, sC, sD, sz, sbias, checkpoints,
                    chunk_delta](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                     auto like = [](const Tensor& t) {
                       return t.defined() ? Tensor::empty(t.shape(), t.dtype(), t.device()) : Tensor();
                     };
                     const Tensor delta_now = kept_delta.defined() ? kept_delta : recompute_delta().detach();
                     SERPENT_CHECK(delta_now.shape() == su.shape() && delta_now.dtype() == su.dtype(),
                                   "selective_scan: recomputed delta ", delta_now.str(), " does not match u ",
                                   su.str());
                     cuda::ScanArgs bargs = args;
                     bargs.delta = delta_now.data_ptr();
                     Tensor du = like(su), ddelta = like(delta_now), dA = like(sA), dB = like(sB), dC = like(sC);
                     Tensor dD = like(sD), dz = like(sz), dbias = like(sbias);
                     const int dev_index = su.device().index;
                     const cuda::ScanGradArgs ga{du.data_ptr(),
                                                 ddelta.data_ptr(),
                                                 dA.data<float>(),
                                                 dB.data_ptr(),
                                                 dC.data_ptr(),
                                                 dD.defined() ? dD.data<float>() : nullptr,
                                                 dz.defined() ? dz.data_ptr() : nullptr,
                                                 dbias.defined() ? dbias.data<float>() : nullptr};
                     cuda::selective_scan_backward(bargs, g[0].data_ptr(), checkpoints.data<float>(),
                                                   chunk_delta.data<float>(), ga, dev_index);
                     return {du, ddelta, dA, dB, dC, dD, dz, dbias};
                   });
  return {y, last};
}
#endif

}  // namespace

ScanOutput selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& Bm, const Tensor& Cm,
                          const Tensor& D, const Tensor& z, const Tensor& delta_bias, bool delta_softplus,
                          const RecomputeFn& recompute_delta) {
  const char* op = "selective_scan";
  checks::floating(op, "u", u);
  checks::rank(op, "u", u, 3);
  checks::nonempty(op, "u", u);
  const int64_t B = u.size(0), L = u.size(1), E = u.size(2);
  checks::rank(op, "A", A, 2);
  const int64_t N = A.size(1);
  SERPENT_CHECK(N >= 1, op, ": A ", shape_str(A.shape()), " must have at least one state per channel");
  // On the cpu every input has u's dtype. On a GPU u, delta, z, B and C share the activation
  // dtype (f32 or bf16) while A, D and delta_bias stay f32.
  const DType param_dtype = u.is_cuda() ? DType::f32 : u.dtype();
  auto like_param = [&](const char* name, const Tensor& t) {
    checks::defined(op, name, t);
    SERPENT_CHECK(t.dtype() == param_dtype && t.device() == u.device(), op, ": ", name, " is ", t.str(), "; expected ",
                  dtype_name(param_dtype), " on ", u.device().str());
  };
  checks::like(op, "delta", delta, "u", u);
  checks::shape(op, "delta", delta, {B, L, E});
  like_param("A", A);
  checks::shape(op, "A", A, {E, N});
  checks::like(op, "B", Bm, "u", u);
  checks::shape(op, "B", Bm, {B, L, N});
  checks::like(op, "C", Cm, "u", u);
  checks::shape(op, "C", Cm, {B, L, N});
  if (D.defined()) {
    like_param("D", D);
    checks::shape(op, "D", D, {E});
  }
  if (z.defined()) {
    checks::like(op, "z", z, "u", u);
    checks::shape(op, "z", z, {B, L, E});
  }
  if (delta_bias.defined()) {
    like_param("delta_bias", delta_bias);
    checks::shape(op, "delta_bias", delta_bias, {E});
  }
  if (u.is_cuda()) {
    SERPENT_ON_CUDA(return selective_scan_cuda(u, delta, A, Bm, Cm, D, z, delta_bias, delta_softplus, recompute_delta));
  }

  auto in = std::make_shared<ScanInputs>(
      ScanInputs{u.detach(), delta.detach(), A.detach(), Bm.detach(), Cm.detach(), D.defined() ? D.detach() : Tensor(),
                 z.defined() ? z.detach() : Tensor(), delta_bias.defined() ? delta_bias.detach() : Tensor(),
                 delta_softplus, B, L, E, N});
  Tensor y = Tensor::empty({B, L, E}, u.dtype(), u.device());
  Tensor last = Tensor::empty({B, E, N}, u.dtype(), u.device());
  dispatch_float(u.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    cpu::selective_scan_forward<T>(in->params<T>(), y.data<T>(), last.data<T>());
  });
  if (recompute_delta) in->delta = Tensor();
  autograd::record(op, y, {u, delta, A, Bm, Cm, D, z, delta_bias},
                   [in, recompute_delta](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                     auto like = [](const Tensor& t) {
                       return t.defined() ? Tensor::empty(t.shape(), t.dtype(), t.device()) : Tensor();
                     };
                     if (!in->delta.defined()) {
                       in->delta = recompute_delta().detach();
                       SERPENT_CHECK(in->delta.shape() == in->u.shape() && in->delta.dtype() == in->u.dtype(),
                                     "selective_scan: recomputed delta ", in->delta.str(), " does not match u ",
                                     in->u.str());
                     }
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
