// Embedding lookup; its gradient is accumulated into the rows that were used. The GPU kernels are
// kernels/cuda/embedding.h; ids there are validated as kernels/cuda/index_check.h describes.
#include "autograd/checks.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/index_check.h"

namespace serpent {

namespace {

template <class I>
void check_ids(const I* ids, int64_t n, int64_t vocab) {
  for (int64_t i = 0; i < n; ++i)
    SERPENT_CHECK(ids[i] >= 0 && int64_t(ids[i]) < vocab, "embedding: token id ", int64_t(ids[i]), " at position ", i,
                  " is outside the vocabulary [0, ", vocab, ")");
}

template <class F>
auto dispatch_ids(DType dt, F&& f) {
  if (dt == DType::i32) return f(int32_t{});
  return f(int64_t{});
}

#ifdef SERPENT_CUDA
// Weight on a GPU. Ids from the host are checked there and uploaded; ids already on the device
// are checked by the kernel, and earlier launches' findings are raised here (never waiting).
Tensor embedding_cuda(const Tensor& weight, const Tensor& ids) {
  const int64_t V = weight.size(0), D = weight.size(1), M = ids.numel();
  const Device dev = weight.device();
  SERPENT_CHECK(weight.dtype() == DType::f32 || weight.dtype() == DType::bf16,
                "embedding: on a GPU the weight must be f32 or bf16, got ", weight.str());
  Tensor ids_dev = ids;
  if (ids.is_cuda()) {
    SERPENT_CHECK(ids.device() == dev, "embedding: ids on ", ids.device().str(), " but weight on ", dev.str());
    cuda::raise_recorded_bad_index(dev.index);
  } else {
    dispatch_ids(ids.dtype(), [&](auto i0) {
      using I = decltype(i0);
      check_ids(ids.data<I>(), M, V);
    });
    ids_dev = ids.to(dev);
  }
  Shape out_shape = ids.shape();
  out_shape.push_back(D);
  Tensor out = Tensor::empty(out_shape, weight.dtype(), dev);
  cuda::embedding_forward(weight.data_ptr(), weight.dtype(), ids_dev.data_ptr(), ids_dev.dtype(), out.data_ptr(), M, V,
                          D, dev.index);
  autograd::record("embedding", out, {weight}, [ids_dev, V, D, M](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    Tensor dw = Tensor::empty({V, D}, g[0].dtype(), g[0].device());
    cuda::embedding_backward(ids_dev.data_ptr(), ids_dev.dtype(), g[0].data_ptr(), g[0].dtype(), dw.data_ptr(), M, V, D,
                             g[0].device().index);
    return {dw};
  });
  return out;
}
#endif

}  // namespace

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  checks::floating("embedding", "weight", weight);
  checks::rank("embedding", "weight", weight, 2);
  checks::index_type("embedding", "ids", ids);
  checks::nonempty("embedding", "ids", ids);
  if (weight.is_cuda()) {
    SERPENT_ON_CUDA(return embedding_cuda(weight, ids));
  }
  SERPENT_CHECK(ids.device() == weight.device(), "embedding: ids on ", ids.device().str(), " but weight on ",
                weight.device().str());
  const int64_t V = weight.size(0), D = weight.size(1), M = ids.numel();
  Shape out_shape = ids.shape();
  out_shape.push_back(D);
  Tensor out = Tensor::empty(out_shape, weight.dtype(), weight.device());
  dispatch_ids(ids.dtype(), [&](auto i0) {
    using I = decltype(i0);
    check_ids(ids.data<I>(), M, V);
    dispatch_float(weight.dtype(), "embedding", [&](auto z) {
      using T = decltype(z);
      cpu::embedding_forward<T, I>(weight.data<T>(), ids.data<I>(), out.data<T>(), M, D);
    });
  });
  autograd::record("embedding", out, {weight}, [ids, V, D, M](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    Tensor dw = Tensor::empty({V, D}, g[0].dtype(), g[0].device());
    dispatch_ids(ids.dtype(), [&](auto i0) {
      using I = decltype(i0);
      dispatch_float(g[0].dtype(), "embedding backward", [&](auto z) {
        using T = decltype(z);
        cpu::embedding_backward<T, I>(ids.data<I>(), g[0].data<T>(), dw.data<T>(), M, V, D);
      });
    });
    return {dw};
  });
  return out;
}

}  // namespace serpent
