#include "kernels/cpu/selective_scan.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/fast_exp.h"

namespace serpent::cpu {

namespace {

constexpr int64_t kChannelBlock = 16;  // channels walked together: whole cache lines of u, delta, z

template <class T>
T discretized_delta(const ScanParams<T>& p, int64_t idx, int64_t e, T* raw_out) {
  T raw = p.delta[idx] + (p.delta_bias ? p.delta_bias[e] : T(0));
  if (raw_out) *raw_out = raw;
  return p.delta_softplus ? softplus(raw) : raw;
}

}  // namespace

template <class T>
void selective_scan_forward(const ScanParams<T>& p, T* out, T* last_state) {
  const int64_t B = p.B, L = p.L, E = p.E, N = p.N;
  const int64_t blocks = (E + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t e0 = blk * kChannelBlock, e1 = std::min(E, e0 + kChannelBlock);
      std::vector<T> state(size_t((e1 - e0) * N), T(0));
      for (int64_t t = 0; t < L; ++t) {
        const T* Bt = p.Bm + (b * L + t) * N;
        const T* Ct = p.Cm + (b * L + t) * N;
        for (int64_t e = e0; e < e1; ++e) {
          const int64_t idx = (b * L + t) * E + e;
          const T dt = discretized_delta(p, idx, e, static_cast<T*>(nullptr));
          const T u = p.u[idx];
          const T* Ae = p.A + e * N;
          T* s = state.data() + (e - e0) * N;
          T y = 0;
#pragma omp simd reduction(+ : y)
          for (int64_t n = 0; n < N; ++n) {
            s[n] = fast_exp(dt * Ae[n]) * s[n] + dt * Bt[n] * u;
            y += s[n] * Ct[n];
          }
          if (p.D) y += p.D[e] * u;
          out[idx] = p.z ? y * silu(p.z[idx]) : y;
        }
      }
      if (last_state)
        for (int64_t e = e0; e < e1; ++e) std::copy_n(state.data() + (e - e0) * N, N, last_state + (b * E + e) * N);
    }
  }
}

template <class T>
void selective_scan_backward(const ScanParams<T>& p, const T* dout, const ScanGrads<T>& g) {
  const int64_t B = p.B, L = p.L, E = p.E, N = p.N;
  const int64_t blocks = (E + kChannelBlock - 1) / kChannelBlock;
  // Per-batch partial sums of the parameter gradients, added over b in order afterwards so the
  // result does not depend on the thread count. dB and dC sum over channels inside one batch,
  // which one thread owns.
  std::vector<T> dA_part(size_t(B * E * N), T(0)), dD_part(size_t(B * E), T(0)), dbias_part(size_t(B * E), T(0));
  std::fill(g.dB, g.dB + B * L * N, T(0));
  std::fill(g.dC, g.dC + B * L * N, T(0));

#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    const int64_t EB = kChannelBlock;
    std::vector<T> states(size_t(L * EB * N)), deltas(size_t(L * EB)), raws(size_t(L * EB)), ys(size_t(L * EB));
    std::vector<T> grad_state(size_t(EB * N)), a_next(size_t(EB * N));
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t e0 = blk * EB, e1 = std::min(E, e0 + EB), width = e1 - e0;
      // Recompute the forward for this block, keeping every state.
      for (int64_t t = 0; t < L; ++t) {
        const T* Bt = p.Bm + (b * L + t) * N;
        const T* Ct = p.Cm + (b * L + t) * N;
        for (int64_t e = e0; e < e1; ++e) {
          const int64_t idx = (b * L + t) * E + e, k = t * EB + (e - e0);
          T raw;
          const T dt = discretized_delta(p, idx, e, &raw);
          deltas[size_t(k)] = dt;
          raws[size_t(k)] = raw;
          const T u = p.u[idx];
          const T* Ae = p.A + e * N;
          T* s = states.data() + k * N;
          const T* prev = t > 0 ? states.data() + ((t - 1) * EB + (e - e0)) * N : nullptr;
          T y = 0;
#pragma omp simd reduction(+ : y)
          for (int64_t n = 0; n < N; ++n) {
            s[n] = fast_exp(dt * Ae[n]) * (prev ? prev[n] : T(0)) + dt * Bt[n] * u;
            y += s[n] * Ct[n];
          }
          if (p.D) y += p.D[e] * u;
          ys[size_t(k)] = y;
        }
      }
      // Reverse recurrence.
      std::fill(grad_state.begin(), grad_state.begin() + width * N, T(0));
      std::fill(a_next.begin(), a_next.begin() + width * N, T(0));
      for (int64_t t = L - 1; t >= 0; --t) {
        const T* Bt = p.Bm + (b * L + t) * N;
        const T* Ct = p.Cm + (b * L + t) * N;
        T* dBt = g.dB + (b * L + t) * N;
        T* dCt = g.dC + (b * L + t) * N;
        for (int64_t e = e0; e < e1; ++e) {
          const int64_t idx = (b * L + t) * E + e, k = t * EB + (e - e0);
          const T u = p.u[idx], dt = deltas[size_t(k)];
          T dy = dout[idx];
          if (p.z) {
            const T zv = p.z[idx];
            g.dz[idx] = dy * ys[size_t(k)] * silu_grad(zv);
            dy *= silu(zv);
          }
          T du = 0;
          if (p.D) {
            du = p.D[e] * dy;
            dD_part[size_t(b * E + e)] += dy * u;
          }
          const T* Ae = p.A + e * N;
          const T* s = states.data() + k * N;
          const T* prev = t > 0 ? states.data() + ((t - 1) * EB + (e - e0)) * N : nullptr;
          T* gs = grad_state.data() + (e - e0) * N;
          T* an = a_next.data() + (e - e0) * N;
          T* dAe = dA_part.data() + (b * E + e) * N;
          T ddelta = 0;
#pragma omp simd reduction(+ : du, ddelta)
          for (int64_t n = 0; n < N; ++n) {
            const T gn = gs[n] * an[n] + Ct[n] * dy;
            const T a = fast_exp(dt * Ae[n]);
            const T sa = prev ? prev[n] * a : T(0);  // s_{t-1} a_t
            dCt[n] += dy * s[n];
            dBt[n] += gn * dt * u;
            du += gn * dt * Bt[n];
            ddelta += gn * (Ae[n] * sa + Bt[n] * u);
            dAe[n] += gn * sa * dt;
            gs[n] = gn;
            an[n] = a;
          }
          const T draw = p.delta_softplus ? ddelta * softplus_grad(raws[size_t(k)]) : ddelta;
          g.ddelta[idx] = draw;
          dbias_part[size_t(b * E + e)] += draw;
          g.du[idx] = du;
        }
      }
    }
  }
  std::fill(g.dA, g.dA + E * N, T(0));
  if (g.dD) std::fill(g.dD, g.dD + E, T(0));
  if (g.ddelta_bias) std::fill(g.ddelta_bias, g.ddelta_bias + E, T(0));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < E * N; ++i) g.dA[i] += dA_part[size_t(b * E * N + i)];
    for (int64_t e = 0; e < E; ++e) {
      if (g.dD) g.dD[e] += dD_part[size_t(b * E + e)];
      if (g.ddelta_bias) g.ddelta_bias[e] += dbias_part[size_t(b * E + e)];
    }
  }
}

template void selective_scan_forward<float>(const ScanParams<float>&, float*, float*);
template void selective_scan_forward<double>(const ScanParams<double>&, double*, double*);
template void selective_scan_backward<float>(const ScanParams<float>&, const float*, const ScanGrads<float>&);
template void selective_scan_backward<double>(const ScanParams<double>&, const double*, const ScanGrads<double>&);

}  // namespace serpent::cpu
