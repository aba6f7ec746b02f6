#include "kernels/cpu/causal_conv1d.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/elementwise.h"

namespace serpent::cpu {

namespace {

// pre-activation of one time step for all channels: row (E)
template <class T>
void conv_row(const T* x, const T* weight, const T* bias, T* pre, int64_t t, int64_t E, int64_t W) {
  for (int64_t e = 0; e < E; ++e) pre[e] = bias ? bias[e] : T(0);
  for (int64_t w = 0; w < W; ++w) {
    int64_t src = t - W + 1 + w;
    if (src < 0) continue;
    const T* xr = x + src * E;
    for (int64_t e = 0; e < E; ++e) pre[e] += weight[e * W + w] * xr[e];
  }
}

constexpr int64_t kTimeChunk = 64;  // time steps per work item in backward

}  // namespace

template <class T>
void causal_conv1d_forward(const T* x, const T* weight, const T* bias, T* out, int64_t B, int64_t L, int64_t E,
                           int64_t W, bool silu_on) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < L; ++t) {
      T* o = out + (b * L + t) * E;
      conv_row(x + b * L * E, weight, bias, o, t, E, W);
      if (silu_on)
        for (int64_t e = 0; e < E; ++e) o[e] = silu(o[e]);
    }
  }
}

template <class T>
void causal_conv1d_backward(const T* x, const T* weight, const T* bias, const T* dout, T* dx, T* dweight, T* dbias,
                            int64_t B, int64_t L, int64_t E, int64_t W, bool silu_on) {
  // dpre for all of (B, L, E): the same size as the input, computed once.
  std::vector<T> dpre(size_t(B * L * E));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < L; ++t) {
      const T* go = dout + (b * L + t) * E;
      T* dp = dpre.data() + (b * L + t) * E;
      if (!silu_on) {
        std::copy(go, go + E, dp);
        continue;
      }
      conv_row(x + b * L * E, weight, bias, dp, t, E, W);
      for (int64_t e = 0; e < E; ++e) dp[e] = go[e] * silu_grad(dp[e]);
    }
  }
  // dx: a gather, so every output element is written by exactly one iteration.
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t s = 0; s < L; ++s) {
      T* d = dx + (b * L + s) * E;
      std::fill(d, d + E, T(0));
      for (int64_t w = 0; w < W; ++w) {
        int64_t t = s + W - 1 - w;
        if (t >= L) continue;
        const T* dp = dpre.data() + (b * L + t) * E;
        for (int64_t e = 0; e < E; ++e) d[e] += weight[e * W + w] * dp[e];
      }
    }
  }
  // dweight and dbias: partial sums per (batch, time chunk), added in a fixed order.
  const int64_t chunks = (L + kTimeChunk - 1) / kTimeChunk;
  const int64_t parts = B * chunks;
  const int64_t stride = E * (W + 1);
  std::vector<T> partial(size_t(parts * stride), T(0));
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < parts; ++p) {
    int64_t b = p / chunks, c = p % chunks;
    T* pw = partial.data() + p * stride;
    T* pb = pw + E * W;
    for (int64_t t = c * kTimeChunk; t < std::min(L, (c + 1) * kTimeChunk); ++t) {
      const T* dp = dpre.data() + (b * L + t) * E;
      for (int64_t e = 0; e < E; ++e) pb[e] += dp[e];
      for (int64_t w = 0; w < W; ++w) {
        int64_t src = t - W + 1 + w;
        if (src < 0) continue;
        const T* xr = x + (b * L + src) * E;
        for (int64_t e = 0; e < E; ++e) pw[e * W + w] += dp[e] * xr[e];
      }
    }
  }
  std::fill(dweight, dweight + E * W, T(0));
  if (dbias) std::fill(dbias, dbias + E, T(0));
  for (int64_t p = 0; p < parts; ++p) {
    const T* pw = partial.data() + p * stride;
    for (int64_t i = 0; i < E * W; ++i) dweight[i] += pw[i];
    if (dbias)
      for (int64_t e = 0; e < E; ++e) dbias[e] += pw[E * W + e];
  }
}

template void causal_conv1d_forward<float>(const float*, const float*, const float*, float*, int64_t, int64_t, int64_t,
                                           int64_t, bool);
template void causal_conv1d_forward<double>(const double*, const double*, const double*, double*, int64_t, int64_t,
                                            int64_t, int64_t, bool);
template void causal_conv1d_backward<float>(const float*, const float*, const float*, const float*, float*, float*,
                                            float*, int64_t, int64_t, int64_t, int64_t, bool);
template void causal_conv1d_backward<double>(const double*, const double*, const double*, const double*, double*,
                                             double*, double*, int64_t, int64_t, int64_t, int64_t, bool);

}  // namespace serpent::cpu
