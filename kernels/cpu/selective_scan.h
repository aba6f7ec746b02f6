// The Mamba-1 selective scan with its discretization fused, on the host (docs/DESIGN.md, "The selective scan").
// Per batch b, channel e and state n, over time t:
//   delta_t = softplus(delta[b,t,e] + delta_bias[e])   (softplus and bias optional)
//   s_t[n]  = exp(delta_t A[e,n]) s_{t-1}[n] + delta_t Bm[b,t,n] u[b,t,e],   s_{-1} = 0
//   y_t     = sum_n s_t[n] Cm[b,t,n] + D[e] u[b,t,e]                         (D optional)
//   out     = y_t * silu(z[b,t,e])                                           (z optional)
// The state lives in a small per-channel buffer; (B, L, E, N) is never materialized. Backward
// recomputes the states of one channel block at a time and runs the reverse recurrence
//   g_t = C_t dy_t + exp(delta_{t+1} A) g_{t+1}
// with the gradient formulas of docs/DESIGN.md, "The selective scan".
#pragma once

#include <cstdint>

namespace serpent::cpu {

template <class T>
struct ScanParams {
  const T* u;           // (B, L, E)
  const T* delta;       // (B, L, E), before bias and softplus
  const T* A;           // (E, N)
  const T* Bm;          // (B, L, N)
  const T* Cm;          // (B, L, N)
  const T* D;           // (E) or null
  const T* z;           // (B, L, E) or null
  const T* delta_bias;  // (E) or null
  bool delta_softplus;
  int64_t B, L, E, N;
};

template <class T>
struct ScanGrads {
  T* du;           // (B, L, E)
  T* ddelta;       // (B, L, E)
  T* dA;           // (E, N)
  T* dB;           // (B, L, N)
  T* dC;           // (B, L, N)
  T* dD;           // (E) or null
  T* dz;           // (B, L, E) or null
  T* ddelta_bias;  // (E) or null
};

// out (B, L, E); last_state (B, E, N) or null.
template <class T>
void selective_scan_forward(const ScanParams<T>& p, T* out, T* last_state);

// dout (B, L, E). Every gradient array is overwritten.
template <class T>
void selective_scan_backward(const ScanParams<T>& p, const T* dout, const ScanGrads<T>& g);

}  // namespace serpent::cpu
