// Causal depthwise conv1d over time with fused SiLU, forward and backward, on the GPU. The CPU
// twin is kernels/cpu/causal_conv1d.h; the math, per batch b and channel e:
//   pre[t] = bias + sum_{k<W} weight[k] * x[t - W + 1 + k]     (x = 0 before t = 0)
//   out[t] = silu(pre[t]) or pre[t]
// Backward, with dpre[t] = dout[t] * silu'(pre[t]) (pre recomputed from x, never stored):
//   dx[s] = sum_k weight[k] * dpre[s + W - 1 - k]          (terms past L - 1 are 0)
//   dweight[k] = sum_{b,t} dpre[t] * x[t - W + 1 + k];  dbias = sum_{b,t} dpre[t]
//
// Layout (B, L, E) with E contiguous: a thread owns VEC neighbouring channels of one batch row
// over a chunk of time steps, so that every load and store moves 8 or 16 bytes (forward: 8 bf16
// or 4 f32 channels, backward: 4; one channel when E or the pointers do not allow packs), and
// the lanes of a warp read neighbouring packs, so every access is coalesced. The time loop loads
// kAhead steps before it computes them, which keeps several loads in flight per thread: the
// first version (one channel per thread, one 2-byte load per step) reached 25-30% of HBM
// bandwidth. The last W inputs (and
// in the backward the pending dx sums) slide through registers, so each element of x, dout and
// dx is read or written once (plus W - 1 halo steps per chunk). Per element the forward moves
// 2 x sizeof(T) bytes for 2W + 5 FLOPs (with SiLU), the backward 3 x sizeof(T): both are
// bandwidth bound (B 8, L 2048, E 1536 in bf16: 100 MB forward, ~25 us at 4 TB/s).
//
// The weight and bias gradients reduce over batch and time. Each thread writes its chunk's sums
// into its own slots of a partials buffer (one row per (batch, chunk)), and sum_partials adds the
// rows in a fixed order: deterministic, no float atomics.
#include <initializer_list>

#include "kernels/cuda/causal_conv1d.h"
#include "kernels/cuda/partials.h"
#include "kernels/cuda/util.cuh"

namespace serpent::cuda {

namespace {

constexpr int kThreads = 64;  // packs of channels per block
constexpr int kAhead = 4;     // time steps loaded before they are computed

// Time steps per thread: long enough that the W - 1 halo steps cost little, short enough that
// (B, L / steps, E / (VEC x kThreads)) blocks fill the device at mamba's shapes.
template <int VEC>
constexpr int64_t steps_per_thread() {
  return VEC == 1 ? 64 : 32;
}

__device__ __forceinline__ float silu_f(float v) {
  return v * fast_sigmoid(v);
}
// d silu / dv = sig(v) * (1 + v * (1 - sig(v)))
__device__ __forceinline__ float silu_grad_f(float v) {
  const float s = fast_sigmoid(v);
  return s * (1.f + v * (1.f - s));
}

// VEC channels of one time step, as raw values (converted to f32 when they are used).
template <class T, int VEC>
__device__ __forceinline__ Pack<T, VEC> load_step(const T* p, int64_t t, int64_t L, int64_t E) {
  if (t >= 0 && t < L) return *reinterpret_cast<const Pack<T, VEC>*>(p + t * E);
  Pack<T, VEC> zero;
#pragma unroll
  for (int c = 0; c < VEC; ++c) zero.v[c] = T(0.f);
  return zero;
}

template <int W, int VEC>
__device__ __forceinline__ void load_weights(const float* weight, int64_t e0, float (&w)[W][VEC]) {
#pragma unroll
  for (int c = 0; c < VEC; ++c)
#pragma unroll
    for (int k = 0; k < W; ++k) w[k][c] = weight[(e0 + c) * W + k];
}

// Grid (ceil(E / (VEC kThreads)), ceil(L / steps), B); E % VEC == 0.
template <int W, int VEC, class T>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(const T* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
                   T* __restrict__ out, int64_t L, int64_t E, bool silu) {
  constexpr int64_t kSteps = steps_per_thread<VEC>();
  const int64_t e0 = (int64_t(blockIdx.x) * kThreads + threadIdx.x) * VEC;
  if (e0 >= E) return;
  const int64_t t0 = int64_t(blockIdx.y) * kSteps, t1 = min(L, t0 + kSteps);
  const int64_t base = int64_t(blockIdx.z) * L * E + e0;
  const T* xb = x + base;
  T* ob = out + base;
  float w[W][VEC], win[W][VEC], b0[VEC];  // win[k] = x[t - W + 1 + k]
  load_weights<W, VEC>(weight, e0, w);
#pragma unroll
  for (int c = 0; c < VEC; ++c) b0[c] = bias ? bias[e0 + c] : 0.f;
#pragma unroll
  for (int k = 0; k < W - 1; ++k) {
    const Pack<T, VEC> p = load_step<T, VEC>(xb, t0 - (W - 1) + k, L, E);
#pragma unroll
    for (int c = 0; c < VEC; ++c) win[k][c] = to_compute(p.v[c]);
  }
  for (int64_t ta = t0; ta < t1; ta += kAhead) {
    Pack<T, VEC> next[kAhead];
#pragma unroll
    for (int j = 0; j < kAhead; ++j) next[j] = load_step<T, VEC>(xb, ta + j < t1 ? ta + j : L, L, E);
#pragma unroll
    for (int j = 0; j < kAhead; ++j) {
      if (ta + j >= t1) break;
      float o[VEC];
#pragma unroll
      for (int c = 0; c < VEC; ++c) {
        win[W - 1][c] = to_compute(next[j].v[c]);
        float acc = b0[c];
#pragma unroll
        for (int k = 0; k < W; ++k) acc += w[k][c] * win[k][c];
        o[c] = silu ? silu_f(acc) : acc;
#pragma unroll
        for (int k = 0; k < W - 1; ++k) win[k][c] = win[k + 1][c];
      }
      store_pack<VEC>(ob + (ta + j) * E, o);
    }
  }
}

// Same grid as the forward. dx at position s needs dpre at s .. s + W - 1, so a thread runs W - 1
// steps past its chunk (recomputing dpre there) and writes dx only inside its chunk. dpre[t]
// adds weight[k] * dpre[t] to dx[t - W + 1 + k]; acc[k] holds that running sum, and acc[0] is
// complete (written out) once t has reached its last contributor.
// partials (B * chunks, E * W + E): at e * W + k this thread's sum of dpre * x[. - W + 1 + k],
// at E * W + e its sum of dpre, over the steps of its chunk.
template <int W, int VEC, class T>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(const T* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
                    const T* __restrict__ dout, T* __restrict__ dx, float* __restrict__ partials, int64_t L, int64_t E,
                    bool silu) {
  constexpr int64_t kSteps = steps_per_thread<VEC>();
  const int64_t e0 = (int64_t(blockIdx.x) * kThreads + threadIdx.x) * VEC;
  if (e0 >= E) return;
  const int64_t t0 = int64_t(blockIdx.y) * kSteps, t1 = min(L, t0 + kSteps), t_end = min(L, t1 + W - 1);
  const int64_t base = int64_t(blockIdx.z) * L * E + e0;
  const T* xb = x + base;
  const T* gb = dout + base;
  T* dxb = dx + base;
  // xw[k] = x[t - W + 1 + k]; acc[k]: dx[t - W + 1 + k] so far
  float w[W][VEC], xw[W][VEC], acc[W][VEC], dw[W][VEC], b0[VEC], db[VEC];
  load_weights<W, VEC>(weight, e0, w);
#pragma unroll
  for (int c = 0; c < VEC; ++c) {
    b0[c] = bias ? bias[e0 + c] : 0.f;
    db[c] = 0.f;
#pragma unroll
    for (int k = 0; k < W; ++k) acc[k][c] = dw[k][c] = 0.f;
  }
#pragma unroll
  for (int k = 0; k < W - 1; ++k) {
    const Pack<T, VEC> p = load_step<T, VEC>(xb, t0 - (W - 1) + k, L, E);
#pragma unroll
    for (int c = 0; c < VEC; ++c) xw[k][c] = to_compute(p.v[c]);
  }
  for (int64_t ta = t0; ta < t_end; ta += kAhead) {
    Pack<T, VEC> xn[kAhead], gn[kAhead];
#pragma unroll
    for (int j = 0; j < kAhead; ++j) {
      const int64_t t = ta + j < t_end ? ta + j : L;
      xn[j] = load_step<T, VEC>(xb, t, L, E);
      gn[j] = load_step<T, VEC>(gb, t, L, E);
    }
#pragma unroll
    for (int j = 0; j < kAhead; ++j) {
      const int64_t t = ta + j;
      if (t >= t_end) break;
      float done[VEC];
#pragma unroll
      for (int c = 0; c < VEC; ++c) {
        xw[W - 1][c] = to_compute(xn[j].v[c]);
        float dp = to_compute(gn[j].v[c]);
        if (silu) {
          float pre = b0[c];
#pragma unroll
          for (int k = 0; k < W; ++k) pre += w[k][c] * xw[k][c];
          dp *= silu_grad_f(pre);
        }
        if (t < t1) {
          db[c] += dp;
#pragma unroll
          for (int k = 0; k < W; ++k) dw[k][c] += dp * xw[k][c];
        }
#pragma unroll
        for (int k = 0; k < W; ++k) acc[k][c] += w[k][c] * dp;
        done[c] = acc[0][c];
#pragma unroll
        for (int k = 0; k < W - 1; ++k) {
          acc[k][c] = acc[k + 1][c];
          xw[k][c] = xw[k + 1][c];
        }
        acc[W - 1][c] = 0.f;
      }
      if (t - (W - 1) >= t0) store_pack<VEC>(dxb + (t - (W - 1)) * E, done);
    }
  }
  // When the chunk's window reached the end of the sequence, the last W - 1 positions have all
  // their contributors (steps past L - 1 contribute nothing).
#pragma unroll
  for (int k = 0; k < W - 1; ++k) {
    const int64_t s = t_end - (W - 1) + k;
    if (s >= t0 && s < t1) store_pack<VEC>(dxb + s * E, acc[k]);
  }
  const int64_t chunks = gridDim.y;
  float* part = partials + (int64_t(blockIdx.z) * chunks + blockIdx.y) * (E * W + E);
#pragma unroll
  for (int c = 0; c < VEC; ++c) {
#pragma unroll
    for (int k = 0; k < W; ++k) part[(e0 + c) * W + k] = dw[k][c];
    part[E * W + e0 + c] = db[c];
  }
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

// Calls f with the channels per thread as a compile-time constant: kPack when E and every
// activation pointer allow packs of that many, else a single channel.
template <class T, int kPack, class F>
void with_pack(int64_t E, std::initializer_list<const void*> activations, F&& f) {
  bool packed = E % kPack == 0;
  for (const void* p : activations) packed = packed && aligned_to(p, kPack * sizeof(T));
  if (packed) {
    f(std::integral_constant<int, kPack>{});
  } else {
    f(std::integral_constant<int, 1>{});
  }
}

template <int VEC>
dim3 conv_grid(int64_t B, int64_t L, int64_t E) {
  constexpr int64_t steps = steps_per_thread<VEC>();
  const int64_t chunks = (L + steps - 1) / steps;
  SERPENT_CHECK(B <= 65535 && chunks <= 65535, "causal_conv1d: batch ", B, " x length ", L,
                " exceeds the CUDA grid (at most 65535 sequences and ", 65535 * steps, " steps)");
  const int64_t per_block = VEC * kThreads;
  return dim3(unsigned((E + per_block - 1) / per_block), unsigned(chunks), unsigned(B));
}

}  // namespace

void causal_conv1d_forward(const void* x, DType x_dt, const float* weight, const float* bias, void* out, int64_t B,
                           int64_t L, int64_t E, int64_t W, bool silu, int device) {
  if (B * L * E == 0) return;
  cudaStream_t s = stream(device);
  dispatch_f32_bf16(x_dt, "causal_conv1d", [&](auto* tag) {
    using T = tag_t<decltype(tag)>;
    with_pack<T, int(16 / sizeof(T))>(E, {x, out}, [&](auto pack) {
      constexpr int VEC = decltype(pack)::value;
      const dim3 grid = conv_grid<VEC>(B, L, E);
      with_width(W, [&](auto width) {
        forward_kernel<decltype(width)::value, VEC, T>
            <<<grid, kThreads, 0, s>>>(static_cast<const T*>(x), weight, bias, static_cast<T*>(out), L, E, silu);
      });
    });
  });
  CUDA_CHECK_LAUNCH();
}

void causal_conv1d_backward(const void* x, DType x_dt, const float* weight, const float* bias, const void* dout,
                            void* dx, float* dweight, float* dbias, int64_t B, int64_t L, int64_t E, int64_t W,
                            bool silu, int device) {
  if (B * L * E == 0) return;
  cudaStream_t s = stream(device);
  const int64_t stride = E * W + E;
  float* partials = nullptr;
  int64_t parts = 0;
  dispatch_f32_bf16(x_dt, "causal_conv1d backward", [&](auto* tag) {
    using T = tag_t<decltype(tag)>;
    // Four channels per thread: the backward keeps four W-long rows per channel in registers
    // (inputs, pending dx, weight and its gradient), 128 floats at VEC 8 and W 4.
    with_pack<T, 4>(E, {x, dout, dx}, [&](auto pack) {
      constexpr int VEC = decltype(pack)::value;
      const dim3 grid = conv_grid<VEC>(B, L, E);
      parts = B * int64_t(grid.y);
      partials = static_cast<float*>(CachingAllocator::get().allocate(sizeof(float) * parts * stride, device));
      with_width(W, [&](auto width) {
        backward_kernel<decltype(width)::value, VEC, T>
            <<<grid, kThreads, 0, s>>>(static_cast<const T*>(x), weight, bias, static_cast<const T*>(dout),
                                       static_cast<T*>(dx), partials, L, E, silu);
      });
    });
  });
  CUDA_CHECK_LAUNCH();
  sum_partials(partials, parts, stride, E * W, dweight, device);
  if (dbias) sum_partials(partials + E * W, parts, stride, E, dbias, device);
  CachingAllocator::get().release(partials, device);
}

}  // namespace serpent::cuda
