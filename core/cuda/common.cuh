// Shared device helpers: element loads/stores that compute in f32 (f64 for f64), launch sizing,
// and warp/block reductions. Included by the .cu files only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda/runtime.h"
#include "core/dtype.h"

namespace serpent::cuda {

// The arithmetic type for an element type: bf16 and f32 compute in float, f64 in double.
template <class T>
struct Compute {
  using type = float;
};
template <>
struct Compute<double> {
  using type = double;
};
template <class T>
using compute_t = typename Compute<T>::type;

__device__ __forceinline__ float to_compute(float v) {
  return v;
}
__device__ __forceinline__ double to_compute(double v) {
  return v;
}
__device__ __forceinline__ float to_compute(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <class T>
__device__ __forceinline__ T from_compute(float v);
template <>
__device__ __forceinline__ float from_compute<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_compute<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <class T>
__device__ __forceinline__ T from_compute(double v) {
  return T(v);
}

// The per-element activations of the Mamba kernels in a few instructions each, accurate to a few
// parts in 10^7 (the f32 parity bound is 10^-5): exp through the special-function unit (ex2),
// division by the fast reciprocal, and log1p by its atanh series, which unlike log(1 + t) keeps
// full relative precision for small t (softplus of a very negative input is tiny, not zero).
__device__ __forceinline__ float fast_exp(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x * 1.4426950408889634f));
  return y;
}

// log(1 + t) for t in [0, 1]: 2 atanh(s) with s = t / (2 + t) <= 1/3, seven terms (the next one
// is below 1.5e-8 relative).
__device__ __forceinline__ float log1p_unit(float t) {
  const float s = __fdividef(t, 2.f + t), s2 = s * s;
  float p = 1.f / 13.f;
  p = fmaf(p, s2, 1.f / 11.f);
  p = fmaf(p, s2, 1.f / 9.f);
  p = fmaf(p, s2, 1.f / 7.f);
  p = fmaf(p, s2, 1.f / 5.f);
  p = fmaf(p, s2, 1.f / 3.f);
  p = fmaf(p, s2, 1.f);
  return 2.f * s * p;
}

__device__ __forceinline__ float fast_sigmoid(float x) {
  const float e = fast_exp(-fabsf(x));  // in (0, 1]: no overflow for any x
  const float r = __fdividef(1.f, 1.f + e);
  return x >= 0.f ? r : e * r;
}

// softplus(x) = log(1 + e^x) and its derivative sigmoid(x), from one exponential.
__device__ __forceinline__ void fast_softplus(float x, float* softplus, float* sigmoid) {
  const float e = fast_exp(-fabsf(x));
  const float r = __fdividef(1.f, 1.f + e);
  *softplus = fmaxf(x, 0.f) + log1p_unit(e);
  *sigmoid = x >= 0.f ? r : e * r;
}

// Grid size for n elements at `threads` per block with a grid-stride loop: enough blocks to fill
// the device several times over, never more than needed.
inline unsigned grid_for(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return unsigned(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum over the block; every thread gets the result. `scratch` holds 32 values.
template <class T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T total = lane < warps ? scratch[lane] : T(0);
  return warp_sum(total);
}

// Calls f with a null pointer of the device element type for dt (f32, f64 or bf16).
template <class F>
void dispatch_device_float(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::f32:
      f(static_cast<float*>(nullptr));
      break;
    case DType::f64:
      f(static_cast<double*>(nullptr));
      break;
    case DType::bf16:
      f(static_cast<__nv_bfloat16*>(nullptr));
      break;
    default:
      fail(op, ": expected a f32, f64 or bf16 tensor on the GPU, got ", dtype_name(dt));
  }
}

}  // namespace serpent::cuda
