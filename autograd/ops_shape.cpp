// Views and copies that change shape.
#include <algorithm>

#include "autograd/checks.h"
#include "autograd/columns.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "kernels/cuda/elementwise.h"

namespace serpent {

Tensor reshape(const Tensor& a, const Shape& shape) {
  checks::defined("reshape", "input", a);
  Tensor out = a.view(shape);
  Shape original = a.shape();
  autograd::record("reshape", out, {a},
                   [original](const std::vector<Tensor>& g) -> std::vector<Tensor> { return {g[0].view(original)}; });
  return out;
}

Tensor narrow(const Tensor& a, int64_t dim, int64_t start, int64_t length) {
  checks::defined("narrow", "input", a);
  SERPENT_CHECK(dim == 0, "narrow: only dimension 0 gives a contiguous view, got dim ", dim, " for ", a.str());
  SERPENT_CHECK(a.dim() >= 1 && start >= 0 && length >= 0 && start + length <= a.size(0), "narrow: rows [", start, ", ",
                start + length, ") out of range for ", a.str());
  const int64_t row = a.size(0) ? a.numel() / a.size(0) : 0;
  auto view_of = [&](const std::shared_ptr<TensorImpl>& base) {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = base->storage;
    impl->offset = base->offset + start * row;
    impl->shape = base->shape;
    impl->shape[0] = length;
    impl->dtype = base->dtype;
    return impl;
  };
  Tensor out(view_of(a.impl_ptr()));
  if (a.impl().bf16_copy) out.impl().bf16_copy = view_of(a.impl().bf16_copy);
  Shape full = a.shape();
  autograd::record("narrow", out, {a}, [full, start, length](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    Tensor grad = Tensor::empty(full, g[0].dtype(), g[0].device());
    grad.zero_();
    narrow(grad, 0, start, length).copy_(g[0]);
    return {grad};
  });
  return out;
}

void copy_columns(const Tensor& src, const Tensor& dst, int64_t rows, int64_t cols, int64_t start, int64_t len,
                  bool scatter) {
  if (src.is_cuda()) {
    SERPENT_ON_CUDA(cuda::copy_columns(src.data_ptr(), dst.data_ptr(), rows, cols, start, len, src.dtype(), scatter,
                                       src.device().index));
    return;
  }
  const size_t es = dtype_size(src.dtype());
  char* s = static_cast<char*>(src.data_ptr());
  char* d = static_cast<char*>(dst.data_ptr());
#pragma omp parallel for if (rows * len > (1 << 15))
  for (int64_t r = 0; r < rows; ++r) {
    char* srow = s + size_t(r * cols + start) * es;
    char* drow = d + size_t(r * len) * es;
    if (scatter)
      std::copy_n(drow, size_t(len) * es, srow);
    else
      std::copy_n(srow, size_t(len) * es, drow);
  }
}

Tensor slice_last(const Tensor& a, int64_t start, int64_t length) {
  checks::defined("slice_last", "input", a);
  SERPENT_CHECK(a.dim() >= 1, "slice_last: expected at least one dimension, got ", a.str());
  const int64_t cols = a.size(-1);
  SERPENT_CHECK(start >= 0 && length >= 0 && start + length <= cols, "slice_last: columns [", start, ", ",
                start + length, ") out of range for ", a.str());
  Shape out_shape = a.shape();
  out_shape.back() = length;
  const int64_t rows = cols ? a.numel() / cols : 0;
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  copy_columns(a, out, rows, cols, start, length, false);
  Shape in_shape = a.shape();
  autograd::record("slice_last", out, {a},
                   [in_shape, rows, cols, start, length](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                     Tensor full = Tensor::empty(in_shape, g[0].dtype(), g[0].device());
                     full.zero_();
                     copy_columns(full, g[0], rows, cols, start, length, true);
                     return {full};
                   });
  return out;
}

}  // namespace serpent
