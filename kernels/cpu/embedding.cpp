#include "kernels/cpu/embedding.h"

#include <omp.h>

#include <algorithm>

namespace serpent::cpu {

template <class T, class I>
void embedding_forward(const T* weight, const I* ids, T* out, int64_t M, int64_t D) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; ++i) std::copy_n(weight + int64_t(ids[i]) * D, D, out + i * D);
}

template <class T, class I>
void embedding_backward(const I* ids, const T* dout, T* dweight, int64_t M, int64_t V, int64_t D) {
  std::fill(dweight, dweight + V * D, T(0));
  // Each thread owns a slice of columns and walks the ids in order: no races, and the sum for
  // every element is taken in the same order whatever the thread count.
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), tid = omp_get_thread_num();
    const int64_t d0 = D * tid / threads, d1 = D * (tid + 1) / threads;
    for (int64_t i = 0; i < M; ++i) {
      T* row = dweight + int64_t(ids[i]) * D;
      const T* g = dout + i * D;
      for (int64_t d = d0; d < d1; ++d) row[d] += g[d];
    }
  }
}

#define SERPENT_INSTANTIATE(T, I)                                                  \
  template void embedding_forward<T, I>(const T*, const I*, T*, int64_t, int64_t); \
  template void embedding_backward<T, I>(const I*, const T*, T*, int64_t, int64_t, int64_t);
SERPENT_INSTANTIATE(float, int32_t)
SERPENT_INSTANTIATE(float, int64_t)
SERPENT_INSTANTIATE(double, int32_t)
SERPENT_INSTANTIATE(double, int64_t)
#undef SERPENT_INSTANTIATE

}  // namespace serpent::cpu
