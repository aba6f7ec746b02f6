// Causal depthwise convolution over time with optional fused SiLU, on the host.
//   pre[b,t,e] = bias[e] + sum_{w<W} weight[e,w] * x[b, t-W+1+w, e]     (x = 0 before t = 0)
//   out = silu(pre) if silu else pre
// Backward with dpre = dout * silu'(pre) (or dout):
//   dx[b,s,e]  = sum_w weight[e,w] * dpre[b, s+W-1-w, e]      (terms past L-1 are 0)
//   dweight[e,w] = sum_{b,t} dpre[b,t,e] * x[b, t-W+1+w, e];  dbias[e] = sum_{b,t} dpre[b,t,e]
// The pre-activation is recomputed in backward rather than stored.
#pragma once

#include <cstdint>

namespace serpent::cpu {

// x, out (B, L, E); weight (E, W); bias (E) or null.
template <class T>
void causal_conv1d_forward(const T* x, const T* weight, const T* bias, T* out, int64_t B, int64_t L, int64_t E,
                           int64_t W, bool silu);

// dout, dx (B, L, E); dweight (E, W) and dbias (E) are overwritten (dbias may be null).
template <class T>
void causal_conv1d_backward(const T* x, const T* weight, const T* bias, const T* dout, T* dx, T* dweight, T* dbias,
                            int64_t B, int64_t L, int64_t E, int64_t W, bool silu);

}  // namespace serpent::cpu
