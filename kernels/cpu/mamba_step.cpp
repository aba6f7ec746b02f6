#include "kernels/cpu/mamba_step.h"

#include <cmath>

#include "kernels/cpu/elementwise.h"

namespace serpent::cpu {

template <class T>
void causal_conv1d_step(T* window, const T* x, const T* weight, const T* bias, T* out, int64_t B, int64_t E, int64_t W,
                        bool silu_on) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t e = 0; e < E; ++e) {
      T* win = window + (b * E + e) * W;
      for (int64_t w = 0; w + 1 < W; ++w) win[w] = win[w + 1];
      win[W - 1] = x[b * E + e];
      T pre = bias ? bias[e] : T(0);
      for (int64_t w = 0; w < W; ++w) pre += weight[e * W + w] * win[w];
      out[b * E + e] = silu_on ? silu(pre) : pre;
    }
  }
}

template <class T>
void selective_scan_step(T* state, const T* u, const T* delta, const T* A, const T* Bm, const T* Cm, const T* D,
                         const T* z, const T* delta_bias, bool delta_softplus, T* out, int64_t B, int64_t E,
                         int64_t N) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t e = 0; e < E; ++e) {
      const int64_t idx = b * E + e;
      const T raw = delta[idx] + (delta_bias ? delta_bias[e] : T(0));
      const T dt = delta_softplus ? softplus(raw) : raw;
      const T uv = u[idx];
      const T* Ae = A + e * N;
      const T* Bb = Bm + b * N;
      const T* Cb = Cm + b * N;
      T* s = state + idx * N;
      T y = 0;
      for (int64_t n = 0; n < N; ++n) {
        s[n] = std::exp(dt * Ae[n]) * s[n] + dt * Bb[n] * uv;
        y += s[n] * Cb[n];
      }
      if (D) y += D[e] * uv;
      out[idx] = z ? y * silu(z[idx]) : y;
    }
  }
}

template void causal_conv1d_step<float>(float*, const float*, const float*, const float*, float*, int64_t, int64_t,
                                        int64_t, bool);
template void causal_conv1d_step<double>(double*, const double*, const double*, const double*, double*, int64_t,
                                         int64_t, int64_t, bool);
template void selective_scan_step<float>(float*, const float*, const float*, const float*, const float*, const float*,
                                         const float*, const float*, const float*, bool, float*, int64_t, int64_t,
                                         int64_t);
template void selective_scan_step<double>(double*, const double*, const double*, const double*, const double*,
                                          const double*, const double*, const double*, const double*, bool, double*,
                                          int64_t, int64_t, int64_t);

}  // namespace serpent::cpu
