// Causal depthwise conv1d over time with fused SiLU, forward and backward, on the GPU. The CPU
// twin is kernels/cpu/causal_conv1d.h; the math, per batch b and channel e:
//   pre[t] = bias + sum_{k<W} weight[k] * x[t - W + 1 + k]     (x = 0 before t = 0)
//   out[t] = silu(pre[t]) or pre[t]
// Backward, with dpre[t] = dout[t] * silu'(pre[t]) (pre recomputed from x, never stored):
//   dx[s] = sum_k weight[k] * dpre[s + W - 1 - k]          (terms past L - 1 are 0)
//   dweight[k] = sum_{b,t} dpre[t] * x[t - W + 1 + k];  dbias = sum_{b,t} dpre[t]
//
// Layout (B, L, E) with E contiguous: a thread owns one channel of one batch row over a chunk of
// kSteps time steps, and the 32 lanes of a warp read 32 neighbouring channels, so every load and
// store is coalesced. The last W inputs (and in the backward the pending dx sums) slide through
// registers, so each element of x, dout and dx is read or written once. Per element the forward
// moves 2 x sizeof(T) bytes for 2W + 5 FLOPs (with SiLU), the backward 3 x sizeof(T): both are
// bandwidth bound (B 8, L 2048, E 1536 in bf16: 100 MB forward, ~25 us at 4 TB/s).
//
// The weight and bias gradients reduce over batch and time. Each thread writes its chunk's sums
// into its own slot of a partials buffer (one row per (batch, chunk)), and sum_partials adds the
// rows in a fixed order: deterministic, no float atomics.
#include "kernels/cuda/causal_conv1d.h"
#include "kernels/cuda/partials.h"
#include "kernels/cuda/util.cuh"

namespace serpent::cuda {

namespace {

constexpr int kThreads = 128;   // channels per block
constexpr int64_t kSteps = 64;  // time steps per thread

__device__ __forceinline__ float silu_f(float v) {
  return v * fast_sigmoid(v);
}
// d silu / dv = sig(v) * (1 + v * (1 - sig(v)))
__device__ __forceinline__ float silu_grad_f(float v) {
  const float s = fast_sigmoid(v);
  return s * (1.f + v * (1.f - s));
}

// Grid (ceil(E / kThreads), ceil(L / kSteps), B).
template <int W, class T>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(const T* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
                   T* __restrict__ out, int64_t L, int64_t E, bool silu) {
  const int64_t e = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (e >= E) return;
  const int64_t t0 = int64_t(blockIdx.y) * kSteps, t1 = min(L, t0 + kSteps);
  const int64_t base = int64_t(blockIdx.z) * L * E + e;
  const T* xb = x + base;
  T* ob = out + base;
  float w[W], win[W];  // win[k] = x[t - W + 1 + k]
#pragma unroll
  for (int k = 0; k < W; ++k) w[k] = weight[e * W + k];
  const float b0 = bias ? bias[e] : 0.f;
#pragma unroll
  for (int k = 0; k < W - 1; ++k) {
    const int64_t s = t0 - (W - 1) + k;
    win[k] = s >= 0 ? to_compute(xb[s * E]) : 0.f;
  }
  for (int64_t t = t0; t < t1; ++t) {
    win[W - 1] = to_compute(xb[t * E]);
    float acc = b0;
#pragma unroll
    for (int k = 0; k < W; ++k) acc += w[k] * win[k];
    ob[t * E] = from_compute<T>(silu ? silu_f(acc) : acc);
#pragma unroll
    for (int k = 0; k < W - 1; ++k) win[k] = win[k + 1];
  }
}

// Same grid as the forward. dx at position s needs dpre at s .. s + W - 1, so a thread runs W - 1
// steps past its chunk (recomputing dpre there) and writes dx only inside its chunk. dpre[t]
// adds weight[k] * dpre[t] to dx[t - W + 1 + k]; acc[k] holds that running sum, and acc[0] is
// complete (written out) once t has reached its last contributor.
// partials (B * chunks, E * W + E): at e * W + k this thread's sum of dpre * x[. - W + 1 + k],
// at E * W + e its sum of dpre, over the steps of its chunk.
template <int W, class T>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(const T* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
                    const T* __restrict__ dout, T* __restrict__ dx, float* __restrict__ partials, int64_t L, int64_t E,
                    bool silu) {
  const int64_t e = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (e >= E) return;
  const int64_t t0 = int64_t(blockIdx.y) * kSteps, t1 = min(L, t0 + kSteps), t_end = min(L, t1 + W - 1);
  const int64_t base = int64_t(blockIdx.z) * L * E + e;
  const T* xb = x + base;
  const T* gb = dout + base;
  T* dxb = dx + base;
  float w[W], xw[W], acc[W], dw[W];  // xw[k] = x[t - W + 1 + k]; acc[k]: dx[t - W + 1 + k] so far
#pragma unroll
  for (int k = 0; k < W; ++k) {
    w[k] = weight[e * W + k];
    acc[k] = 0.f;
    dw[k] = 0.f;
  }
  const float b0 = bias ? bias[e] : 0.f;
  float db = 0.f;
#pragma unroll
  for (int k = 0; k < W - 1; ++k) {
    const int64_t s = t0 - (W - 1) + k;
    xw[k] = s >= 0 ? to_compute(xb[s * E]) : 0.f;
  }
  for (int64_t t = t0; t < t_end; ++t) {
    xw[W - 1] = to_compute(xb[t * E]);
    float dp = to_compute(gb[t * E]);
    if (silu) {
      float pre = b0;
#pragma unroll
      for (int k = 0; k < W; ++k) pre += w[k] * xw[k];
      dp *= silu_grad_f(pre);
    }
    if (t < t1) {
      db += dp;
#pragma unroll
      for (int k = 0; k < W; ++k) dw[k] += dp * xw[k];
    }
#pragma unroll
    for (int k = 0; k < W; ++k) acc[k] += w[k] * dp;
    if (t - (W - 1) >= t0) dxb[(t - (W - 1)) * E] = from_compute<T>(acc[0]);
#pragma unroll
    for (int k = 0; k < W - 1; ++k) {
      acc[k] = acc[k + 1];
      xw[k] = xw[k + 1];
    }
    acc[W - 1] = 0.f;
  }
  // When the chunk's window reached the end of the sequence, the last W - 1 positions have all
  // their contributors (steps past L - 1 contribute nothing).
#pragma unroll
  for (int k = 0; k < W - 1; ++k) {
    const int64_t s = t_end - (W - 1) + k;
    if (s >= t0 && s < t1) dxb[s * E] = from_compute<T>(acc[k]);
  }
  const int64_t chunks = gridDim.y;
  float* part = partials + (int64_t(blockIdx.z) * chunks + blockIdx.y) * (E * W + E);
#pragma unroll
  for (int k = 0; k < W; ++k) part[e * W + k] = dw[k];
  part[E * W + e] = db;
}

template <class F>
void with_width(int64_t W, F&& f) {
  switch (W) {
    case 1:
      f(std::integral_constant<int, 1>{});
      break;
    case 2:
      f(std::integral_constant<int, 2>{});
      break;
    case 3:
      f(std::integral_constant<int, 3>{});
      break;
    case 4:
      f(std::integral_constant<int, 4>{});
      break;
    default:
      fail("causal_conv1d: the CUDA kernel supports widths 1 to ", kMaxConvWidth, ", got ", W);
  }
}

dim3 conv_grid(int64_t B, int64_t L, int64_t E) {
  const int64_t chunks = (L + kSteps - 1) / kSteps;
  SERPENT_CHECK(B <= 65535 && chunks <= 65535, "causal_conv1d: batch ", B, " x length ", L,
                " exceeds the CUDA grid (at most 65535 sequences and ", 65535 * kSteps, " steps)");
  return dim3(unsigned((E + kThreads - 1) / kThreads), unsigned(chunks), unsigned(B));
}

}  // namespace

void causal_conv1d_forward(const void* x, DType x_dt, const float* weight, const float* bias, void* out, int64_t B,
                           int64_t L, int64_t E, int64_t W, bool silu, int device) {
  if (B * L * E == 0) return;
  const dim3 grid = conv_grid(B, L, E);
  cudaStream_t s = stream(device);
  dispatch_f32_bf16(x_dt, "causal_conv1d", [&](auto* tag) {
    using T = tag_t<decltype(tag)>;
    with_width(W, [&](auto width) {
      forward_kernel<decltype(width)::value, T>
          <<<grid, kThreads, 0, s>>>(static_cast<const T*>(x), weight, bias, static_cast<T*>(out), L, E, silu);
    });
  });
  CUDA_CHECK_LAUNCH();
}

void causal_conv1d_backward(const void* x, DType x_dt, const float* weight, const float* bias, const void* dout,
                            void* dx, float* dweight, float* dbias, int64_t B, int64_t L, int64_t E, int64_t W,
                            bool silu, int device) {
  if (B * L * E == 0) return;
  const dim3 grid = conv_grid(B, L, E);
  cudaStream_t s = stream(device);
  const int64_t parts = B * int64_t(grid.y), stride = E * W + E;
  float* partials = static_cast<float*>(CachingAllocator::get().allocate(sizeof(float) * parts * stride, device));
  dispatch_f32_bf16(x_dt, "causal_conv1d backward", [&](auto* tag) {
    using T = tag_t<decltype(tag)>;
    with_width(W, [&](auto width) {
      backward_kernel<decltype(width)::value, T><<<grid, kThreads, 0, s>>>(static_cast<const T*>(x), weight, bias,
                                                                           static_cast<const T*>(dout),
                                                                           static_cast<T*>(dx), partials, L, E, silu);
    });
  });
  CUDA_CHECK_LAUNCH();
  sum_partials(partials, parts, stride, E * W, dweight, device);
  if (dbias) sum_partials(partials + E * W, parts, stride, E, dbias, device);
  CachingAllocator::get().release(partials, device);
}

}  // namespace serpent::cuda
