#include "kernels/cpu/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace serpent::cpu {

template <class T, class I>
double cross_entropy_forward(const T* logits, const I* targets, T* lse, int64_t M, int64_t V, int64_t ignore_index,
                             int64_t* count) {
  std::vector<double> row_loss(size_t(M), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < M; ++m) {
    if (int64_t(targets[m]) == ignore_index) continue;
    const T* row = logits + m * V;
    T mx = *std::max_element(row, row + V);
    T s = 0;
    for (int64_t v = 0; v < V; ++v) s += std::exp(row[v] - mx);
    lse[m] = mx + std::log(s);
    row_loss[size_t(m)] = double(lse[m] - row[targets[m]]);
  }
  double total = 0;
  int64_t n = 0;
  for (int64_t m = 0; m < M; ++m) {
    if (int64_t(targets[m]) == ignore_index) continue;
    total += row_loss[size_t(m)];
    ++n;
  }
  *count = n;
  return total;
}

template <class T, class I>
void cross_entropy_backward(const T* logits, const I* targets, const T* lse, T* dlogits, int64_t M, int64_t V,
                            int64_t ignore_index, T scale) {
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < M; ++m) {
    T* d = dlogits + m * V;
    if (int64_t(targets[m]) == ignore_index) {
      std::fill(d, d + V, T(0));
      continue;
    }
    const T* row = logits + m * V;
    for (int64_t v = 0; v < V; ++v) d[v] = scale * std::exp(row[v] - lse[m]);
    d[targets[m]] -= scale;
  }
}

#define SERPENT_INSTANTIATE(T, I)                                                                           \
  template double cross_entropy_forward<T, I>(const T*, const I*, T*, int64_t, int64_t, int64_t, int64_t*); \
  template void cross_entropy_backward<T, I>(const T*, const I*, const T*, T*, int64_t, int64_t, int64_t, T);
SERPENT_INSTANTIATE(float, int32_t)
SERPENT_INSTANTIATE(float, int64_t)
SERPENT_INSTANTIATE(double, int32_t)
SERPENT_INSTANTIATE(double, int64_t)
#undef SERPENT_INSTANTIATE

}  // namespace serpent::cpu
