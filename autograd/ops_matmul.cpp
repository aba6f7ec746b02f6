// Matrix products. linear(x, w) = x @ w^T is the primary form: the weight stays (out, in) as in
// PyTorch and both backward products run on transposed views, never on copies.
#include <optional>

#include "autograd/checks.h"
#include "autograd/columns.h"
#include "autograd/mixed_precision.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cuda/matmul.h"

namespace serpent {

namespace {

// C (M, N) = op(A) @ op(B), see kernels/cpu/matmul.h; C has dtype c_dt (A's by default).
Tensor gemm(bool trans_a, bool trans_b, const Tensor& A, const Tensor& B, int64_t M, int64_t N, int64_t K,
            std::optional<DType> c_dt = std::nullopt) {
  Tensor C = Tensor::empty({M, N}, c_dt.value_or(A.dtype()), A.device());
  if (A.is_cuda()) {
    SERPENT_ON_CUDA(cuda::gemm(trans_a, trans_b, M, N, K, A.data_ptr(), B.data_ptr(), C.data_ptr(), A.dtype(),
                               C.dtype(), false, A.device().index));
    return C;
  }
  dispatch_float(A.dtype(), "matmul", [&](auto z) {
    using T = decltype(z);
    cpu::gemm<T>(trans_a, trans_b, M, N, K, A.data<T>(), B.data<T>(), C.data<T>(), false);
  });
  return C;
}

// C (M, N) = op(A) @ op(B) into an existing C (a row block of a larger tensor may be passed as a
// narrowed view), added to what C holds when `accumulate`.
void gemm_into(bool trans_a, bool trans_b, const Tensor& A, const Tensor& B, const Tensor& C, int64_t M, int64_t N,
               int64_t K, bool accumulate) {
  if (A.is_cuda()) {
    SERPENT_ON_CUDA(cuda::gemm(trans_a, trans_b, M, N, K, A.data_ptr(), B.data_ptr(), C.data_ptr(), A.dtype(),
                               C.dtype(), accumulate, A.device().index));
    return;
  }
  dispatch_float(A.dtype(), "matmul", [&](auto z) {
    using T = decltype(z);
    cpu::gemm<T>(trans_a, trans_b, M, N, K, A.data<T>(), B.data<T>(), C.data<T>(), accumulate);
  });
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  checks::floating("matmul", "a", a);
  checks::like("matmul", "b", b, "a", a);
  checks::rank("matmul", "a", a, 2);
  checks::rank("matmul", "b", b, 2);
  SERPENT_CHECK(a.size(1) == b.size(0), "matmul: inner dimensions differ: a is ", shape_str(a.shape()), ", b is ",
                shape_str(b.shape()), "; expected a (M, K) and b (K, N)");
  const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  Tensor out = gemm(false, false, a, b, M, N, K);
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  autograd::record("matmul", out, {a, b},
                   [a, b, M, N, K, need_a, need_b](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                     // da = g @ b^T (M, K); db = a^T @ g (K, N)
                     return {need_a ? gemm(false, true, g[0], b, M, K, N) : Tensor(),
                             need_b ? gemm(true, false, a, g[0], K, N, M) : Tensor()};
                   });
  return out;
}

Tensor bf16_operand(const Tensor& w) {
  if (w.impl().bf16_copy) return Tensor(w.impl().bf16_copy);
  return w.detach().to(DType::bf16);
}

Tensor linear(const Tensor& x, const Tensor& w) {
  checks::floating("linear", "input", x);
  if (x.is_cuda() && x.dtype() == DType::bf16 && w.dtype() == DType::f32) {
    SERPENT_CHECK(w.device() == x.device(), "linear: input on ", x.device().str(), " but weight on ", w.device().str());
    checks::rank("linear", "input", x, 2);
    checks::rank("linear", "weight", w, 2);
    SERPENT_CHECK(x.size(1) == w.size(1), "linear: input ", shape_str(x.shape()), " has ", x.size(1),
                  " features but weight ", shape_str(w.shape()), " expects ", w.size(1));
    const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
    Tensor wb = bf16_operand(w);
    Tensor out = gemm(false, true, x, wb, M, N, K);
    const bool need_x = x.requires_grad(), need_w = w.requires_grad();
    autograd::record("linear", out, {x, w},
                     [x, wb, M, N, K, need_x, need_w](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       return {need_x ? gemm(false, false, g[0], wb, M, K, N) : Tensor(),
                               need_w ? gemm(true, false, g[0], x, N, K, M, DType::f32) : Tensor()};
                     });
    return out;
  }
  checks::like("linear", "weight", w, "input", x);
  checks::rank("linear", "input", x, 2);
  checks::rank("linear", "weight", w, 2);
  SERPENT_CHECK(x.size(1) == w.size(1), "linear: input ", shape_str(x.shape()), " has ", x.size(1),
                " features but weight ", shape_str(w.shape()), " expects ", w.size(1),
                "; expected input (M, K) and weight (N, K)");
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  Tensor out = gemm(false, true, x, w, M, N, K);
  const bool need_x = x.requires_grad(), need_w = w.requires_grad();
  autograd::record("linear", out, {x, w},
                   [x, w, M, N, K, need_x, need_w](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                     // dx = g @ w (M, K); dw = g^T @ x (N, K)
                     return {need_x ? gemm(false, false, g[0], w, M, K, N) : Tensor(),
                             need_w ? gemm(true, false, g[0], x, N, K, M) : Tensor()};
                   });
  return out;
}

std::vector<Tensor> linear_rows(const Tensor& x, const Tensor& w, const std::vector<int64_t>& rows) {
  checks::floating("linear_rows", "input", x);
  checks::rank("linear_rows", "input", x, 2);
  checks::rank("linear_rows", "weight", w, 2);
  const bool mixed = x.is_cuda() && x.dtype() == DType::bf16 && w.dtype() == DType::f32;
  if (mixed) {
    SERPENT_CHECK(w.device() == x.device(), "linear_rows: input on ", x.device().str(), " but weight on ",
                  w.device().str());
  } else {
    checks::like("linear_rows", "weight", w, "input", x);
  }
  SERPENT_CHECK(x.size(1) == w.size(1), "linear_rows: input ", shape_str(x.shape()), " has ", x.size(1),
                " features but weight ", shape_str(w.shape()), " expects ", w.size(1));
  int64_t total = 0;
  for (int64_t n : rows) {
    SERPENT_CHECK(n >= 1, "linear_rows: every row block needs at least one row, got ", n);
    total += n;
  }
  SERPENT_CHECK(total == w.size(0), "linear_rows: the row blocks add up to ", total, " rows but the weight ",
                shape_str(w.shape()), " has ", w.size(0));
  const int64_t M = x.size(0), K = x.size(1), N = total;
  // The operand the products read: w itself, or its bf16 copy on the mixed-precision path.
  const Tensor wm = mixed ? bf16_operand(w) : w.detach();
  // Narrow outputs (x_proj's dt, B and C: 80 columns from 1536 at mamba-130m) come from one
  // product over the whole weight, with their columns copied out: a product per block would read
  // x, the big operand, once per block in each of the three products. Wide ones (in_proj's x and
  // z) are a product per block, since copying their columns would move more than rereading x.
  const bool one_product = 4 * N <= K;
  std::vector<Tensor> outs;
  outs.reserve(rows.size());
  if (one_product) {
    const Tensor full = gemm(false, true, x, wm, M, N, K);  // (M, N)
    for (int64_t i = 0, start = 0; i < int64_t(rows.size()); start += rows[size_t(i)], ++i) {
      outs.push_back(Tensor::empty({M, rows[size_t(i)]}, full.dtype(), full.device()));
      copy_columns(full, outs.back(), M, N, start, rows[size_t(i)], false);
    }
  } else {
    for (int64_t i = 0, start = 0; i < int64_t(rows.size()); start += rows[size_t(i)], ++i)
      outs.push_back(gemm(false, true, x, narrow(wm, 0, start, rows[size_t(i)]), M, rows[size_t(i)], K));
  }
  std::vector<Tensor*> out_ptrs;
  for (Tensor& o : outs) out_ptrs.push_back(&o);
  const bool need_x = x.requires_grad(), need_w = w.requires_grad();
  const DType w_grad_dtype = w.dtype();
  autograd::record("linear_rows", out_ptrs, {x, w},
                   [x, wm, rows, M, N, K, one_product, need_x, need_w,
                    w_grad_dtype](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                     Tensor dx, dw;
                     if (one_product) {
                       // The output gradients side by side, then one product for each input.
                       Tensor gfull = Tensor::empty({M, N}, g[0].dtype(), g[0].device());
                       for (int64_t i = 0, start = 0; i < int64_t(rows.size()); start += rows[size_t(i)], ++i)
                         copy_columns(gfull, g[size_t(i)], M, N, start, rows[size_t(i)], true);
                       if (need_x) dx = gemm(false, false, gfull, wm, M, K, N);
                       if (need_w) dw = gemm(true, false, gfull, x, N, K, M, w_grad_dtype);
                       return {dx, dw};
                     }
                     if (need_x) dx = Tensor::empty({M, K}, x.dtype(), x.device());
                     if (need_w) dw = Tensor::empty(wm.shape(), w_grad_dtype, x.device());
                     for (int64_t i = 0, start = 0; i < int64_t(rows.size()); start += rows[size_t(i)], ++i) {
                       const int64_t n = rows[size_t(i)];
                       // dx = sum_i g_i @ w_i, the later products added onto the first (beta = 1);
                       // dw_i = g_i^T @ x, written straight into its rows of dw.
                       if (need_x) gemm_into(false, false, g[size_t(i)], narrow(wm, 0, start, n), dx, M, K, n, i > 0);
                       if (need_w) gemm_into(true, false, g[size_t(i)], x, narrow(dw, 0, start, n), n, K, M, false);
                     }
                     return {dx, dw};
                   });
  return outs;
}

}  // namespace serpent
