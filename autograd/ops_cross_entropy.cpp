// Cross-entropy fused with log-softmax (kernels/cpu/cross_entropy.h has the math).
#include <limits>

#include "autograd/checks.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "kernels/cpu/cross_entropy.h"

namespace serpent {

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  const char* op = "cross_entropy";
  checks::floating(op, "logits", logits);
  checks::rank(op, "logits", logits, 2);
  checks::nonempty(op, "logits", logits);
  checks::index_type(op, "targets", targets);
  const int64_t M = logits.size(0), V = logits.size(1);
  checks::shape(op, "targets", targets, {M});
  SERPENT_CHECK(targets.device() == logits.device(), op, ": targets on ", targets.device().str(), " but logits on ",
                logits.device().str());
  SERPENT_CHECK(!logits.is_cuda(), op, ": no CUDA kernel in this build");
  Tensor t64 = targets.to(DType::i64);
  const int64_t* tp = t64.data<int64_t>();
  for (int64_t m = 0; m < M; ++m)
    SERPENT_CHECK(tp[m] == ignore_index || (tp[m] >= 0 && tp[m] < V), op, ": target ", tp[m], " at row ", m,
                  " is outside [0, ", V, ") and is not the ignore index ", ignore_index);

  Tensor lse = Tensor::empty({M}, logits.dtype(), logits.device());
  Tensor loss = Tensor::empty({}, logits.dtype(), logits.device());
  int64_t count = 0;
  dispatch_float(logits.dtype(), op, [&](auto z) {
    using T = decltype(z);
    double total =
        cpu::cross_entropy_forward<T, int64_t>(logits.data<T>(), tp, lse.data<T>(), M, V, ignore_index, &count);
    // Like PyTorch, a batch whose every target is ignored has a NaN mean.
    *loss.data<T>() = count ? T(total / double(count)) : std::numeric_limits<T>::quiet_NaN();
  });
  autograd::record(op, loss, {logits},
                   [logits, t64, lse, M, V, ignore_index, count](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                     Tensor dlogits = Tensor::empty({M, V}, logits.dtype(), logits.device());
                     const double upstream = g[0].item();
                     dispatch_float(logits.dtype(), "cross_entropy backward", [&](auto z) {
                       using T = decltype(z);
                       const T s = count ? T(upstream / double(count)) : T(0);
                       cpu::cross_entropy_backward<T, int64_t>(logits.data<T>(), t64.data<int64_t>(), lse.data<T>(),
                                                               dlogits.data<T>(), M, V, ignore_index, s);
                     });
                     return {dlogits};
                   });
  return loss;
}

}  // namespace serpent
