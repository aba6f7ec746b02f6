#include "kernels/cpu/linear_cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/matmul.h"

namespace serpent::cpu {

template <class T, class I>
double linear_cross_entropy_forward(const T* h, const T* w, const I* targets, int64_t M, int64_t D, int64_t V,
                                    int64_t ignore_index, int64_t chunk_rows, T* dh, T* dw, int64_t* count) {
  const int64_t C = std::max<int64_t>(1, std::min(chunk_rows, M));
  std::vector<T> logits(static_cast<size_t>(C * V));
  std::vector<T> lse(static_cast<size_t>(C));
  double total = 0;
  int64_t counted = 0;
  for (int64_t c0 = 0; c0 < M; c0 += C) {
    const int64_t rows = std::min(C, M - c0);
    const T* hc = h + c0 * D;
    const I* tc = targets + c0;
    gemm<T>(false, true, rows, V, D, hc, w, logits.data(), false);
    int64_t n = 0;
    total += cross_entropy_forward<T, I>(logits.data(), tc, lse.data(), rows, V, ignore_index, &n);
    counted += n;
    if (!dh && !dw) continue;
      // dlogits overwrite the chunk's logits in place.
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < rows; ++m) {
      T* row = logits.data() + m * V;
      if (int64_t(tc[m]) == ignore_index) {
        std::fill(row, row + V, T(0));
        continue;
      }
      for (int64_t v = 0; v < V; ++v) row[v] = std::exp(row[v] - lse[size_t(m)]);
      row[tc[m]] -= T(1);
    }
    if (dh) gemm<T>(false, false, rows, D, V, logits.data(), w, dh + c0 * D, false);
    if (dw) gemm<T>(true, false, V, D, rows, logits.data(), hc, dw, c0 > 0);
  }
  *count = counted;
  return total;
}

#define SERPENT_INSTANTIATE(T, I)                                                                                      \
  template double linear_cross_entropy_forward<T, I>(const T*, const T*, const I*, int64_t, int64_t, int64_t, int64_t, \
                                                     int64_t, T*, T*, int64_t*);
SERPENT_INSTANTIATE(float, int32_t)
SERPENT_INSTANTIATE(float, int64_t)
SERPENT_INSTANTIATE(double, int32_t)
SERPENT_INSTANTIATE(double, int64_t)
#undef SERPENT_INSTANTIATE

}  // namespace serpent::cpu
