// Matrix product on the host through Eigen (multithreaded with OpenMP).
#pragma once

#include <cstdint>

namespace serpent::cpu {

// C (M, N) = op(A) @ op(B) (+ C when accumulate), all row-major and contiguous.
// op(A) is (M, K): A is (M, K), or (K, M) when trans_a. op(B) is (K, N): B is (K, N), or (N, K)
// when trans_b.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, const T* B, T* C, bool accumulate);

}  // namespace serpent::cpu
