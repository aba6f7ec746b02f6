#include "kernels/cpu/matmul.h"

#include <Eigen/Core>

namespace serpent::cpu {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, const T* B, T* C, bool accumulate) {
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using ConstMap = Eigen::Map<const Mat>;
  Eigen::Map<Mat> c(C, M, N);
  if (K == 0) {
    if (!accumulate) c.setZero();
    return;
  }
  ConstMap a(A, trans_a ? K : M, trans_a ? M : K);
  ConstMap b(B, trans_b ? N : K, trans_b ? K : N);
  // Eigen's expression templates pick the kernel; the transposes are free views.
  auto run = [&](const auto& lhs, const auto& rhs) {
    if (accumulate)
      c.noalias() += lhs * rhs;
    else
      c.noalias() = lhs * rhs;
  };
  if (!trans_a && !trans_b) run(a, b);
  if (!trans_a && trans_b) run(a, b.transpose());
  if (trans_a && !trans_b) run(a.transpose(), b);
  if (trans_a && trans_b) run(a.transpose(), b.transpose());
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, const float*, const float*, float*, bool);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, const double*, const double*, double*, bool);

}  // namespace serpent::cpu
