// One token of Mamba's recurrence on the host: the per-token form of the causal conv1d
// (kernels/cpu/causal_conv1d.h) and of the selective scan (kernels/cpu/selective_scan.h), so generation
// costs the same work for every new token however long the context already is.
//
// Conv: the state holds each channel's last W inputs, oldest first. A step shifts the window by
// one, appends the new input and takes the same dot product as the full-sequence kernel:
//   window[b,e,:] = [window[b,e,1:], x[b,e]];  out[b,e] = act(bias[e] + sum_w weight[e,w] window[b,e,w])
// Scan: with delta = softplus?(delta + delta_bias),
//   s[b,e,n] = exp(delta A[e,n]) s[b,e,n] + delta Bm[b,n] u[b,e];  y = sum_n s Cm[b,n] + D[e] u;  out = y silu(z)
// Both evaluate their sums in the order the full-sequence kernels do.
#pragma once

#include <cstdint>

namespace serpent::cpu {

// window (B, E, W) updated in place; x, out (B, E); weight (E, W); bias (E) or null.
template <class T>
void causal_conv1d_step(T* window, const T* x, const T* weight, const T* bias, T* out, int64_t B, int64_t E, int64_t W,
                        bool silu);

// state (B, E, N) updated in place; u, delta, out (B, E); z (B, E) or null; A (E, N); Bm, Cm (B, N);
// D, delta_bias (E) or null.
template <class T>
void selective_scan_step(T* state, const T* u, const T* delta, const T* A, const T* Bm, const T* Cm, const T* D,
                         const T* z, const T* delta_bias, bool delta_softplus, T* out, int64_t B, int64_t E, int64_t N);

}  // namespace serpent::cpu
