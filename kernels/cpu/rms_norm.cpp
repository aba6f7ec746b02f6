#include "kernels/cpu/rms_norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace serpent::cpu {

template <class T>
void add_rms_norm_forward(const T* h, const T* residual_in, const T* weight, T* normed, T* residual_out, T* rstd,
                          int64_t M, int64_t D, double eps) {
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < M; ++m) {
    const T* hm = h + m * D;
    T* r = residual_out + m * D;
    T ss = 0;
    for (int64_t d = 0; d < D; ++d) {
      r[d] = residual_in ? hm[d] + residual_in[m * D + d] : hm[d];
      ss += r[d] * r[d];
    }
    T inv = T(1) / std::sqrt(ss / T(D) + T(eps));
    rstd[m] = inv;
    T* out = normed + m * D;
    for (int64_t d = 0; d < D; ++d) out[d] = r[d] * inv * weight[d];
  }
}

template <class T>
void add_rms_norm_backward(const T* residual_out, const T* weight, const T* rstd, const T* d_normed,
                           const T* d_residual_out, T* d_input, T* d_weight, int64_t M, int64_t D) {
  // d_weight sums over rows: each of a fixed number of row blocks keeps its own partial sum and the
  // partials are added in block order, so the result never depends on the thread count.
  const int64_t blocks = std::min<int64_t>(M, 64);
  std::vector<T> partial(size_t(blocks * D), T(0));
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    T* dw = partial.data() + blk * D;
    for (int64_t m = blk * M / blocks; m < (blk + 1) * M / blocks; ++m) {
      const T* r = residual_out + m * D;
      const T* dn = d_normed + m * D;
      T inv = rstd[m];
      T dot = 0;
      for (int64_t d = 0; d < D; ++d) {
        T xhat = r[d] * inv;
        dot += dn[d] * weight[d] * xhat;
        dw[d] += dn[d] * xhat;
      }
      dot /= T(D);
      T* di = d_input + m * D;
      for (int64_t d = 0; d < D; ++d) {
        T xhat = r[d] * inv;
        di[d] = inv * (dn[d] * weight[d] - xhat * dot) + (d_residual_out ? d_residual_out[m * D + d] : T(0));
      }
    }
  }
  std::fill(d_weight, d_weight + D, T(0));
  for (int64_t blk = 0; blk < blocks; ++blk)
    for (int64_t d = 0; d < D; ++d) d_weight[d] += partial[size_t(blk * D + d)];
}

template void add_rms_norm_forward<float>(const float*, const float*, const float*, float*, float*, float*, int64_t,
                                          int64_t, double);
template void add_rms_norm_forward<double>(const double*, const double*, const double*, double*, double*, double*,
                                           int64_t, int64_t, double);
template void add_rms_norm_backward<float>(const float*, const float*, const float*, const float*, const float*, float*,
                                           float*, int64_t, int64_t);
template void add_rms_norm_backward<double>(const double*, const double*, const double*, const double*, const double*,
                                            double*, double*, int64_t, int64_t);

}  // namespace serpent::cpu
