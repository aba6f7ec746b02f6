// RMSNorm fused with the residual add, forward and backward, on the GPU. The CPU twin is
// kernels/cpu/rms_norm.h; the math, for one row of D values:
//   residual_out = h + residual                       (f32: the residual stream never rounds to bf16)
//   rstd   = 1 / sqrt(mean(residual_out^2) + eps)
//   normed = residual_out * rstd * weight             (written as bf16 or f32)
// Backward, with xhat = residual_out * rstd and dxhat = d_normed * weight:
//   d_input  = rstd * (dxhat - xhat * mean(dxhat * xhat)) + d_residual_out
//   d_weight = sum over rows of d_normed * xhat
// Only residual_out and rstd are saved; xhat is recomputed in the backward.
//
// Layout: one warp per row, four rows per block; a lane walks the row in packs of 4 elements
// (16 bytes of f32, 8 of bf16) when D % 4 == 0 and the pointers are aligned, else one by one.
// The sum of squares and the dot product are warp shuffles, so no shared memory in the forward.
// Traffic per element, forward with bf16 h: read h (2) + residual (4), write residual_out (4) +
// normed (2), reread residual_out (4, mostly from L1/L2): ~12-16 bytes and ~6 FLOPs, so the kernel
// is bandwidth bound (mamba-130m, 16384 x 768 rows: ~200 MB, ~50 us at 4 TB/s).
//
// d_weight is a sum over all M rows. Instead of float atomics (whose order varies run to run),
// each block accumulates its contiguous range of rows into one shared-memory row per warp, adds
// the warps in order, and writes one partial row; sum_partials then adds the partial rows in a
// fixed order. The number of blocks depends only on M, so the result is the same bits every run.
#include <algorithm>
#include <initializer_list>
#include <utility>

#include "kernels/cuda/partials.h"
#include "kernels/cuda/rms_norm.h"
#include "kernels/cuda/util.cuh"

namespace serpent::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
// Blocks in the backward: enough to fill the device (512, 15 warps per SM of an H200, left the
// kernel latency bound), few enough that the partial rows (kMaxBackwardBlocks x D floats) stay
// small.
constexpr int64_t kMaxBackwardBlocks = 1024;

template <int VEC, class TH, class TO>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(const TH* __restrict__ h, const float* __restrict__ residual, const float* __restrict__ weight,
                   TO* __restrict__ normed, float* __restrict__ residual_out, float* __restrict__ rstd, int64_t M,
                   int64_t D, float eps) {
  const int lane = threadIdx.x & 31;
  for (int64_t row = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5); row < M; row += int64_t(gridDim.x) * kWarps) {
    const TH* hr = h + row * D;
    const float* rr = residual ? residual + row * D : nullptr;
    float* ro = residual_out + row * D;
    float ss = 0.f;
    for (int64_t d = int64_t(lane) * VEC; d < D; d += 32 * VEC) {
      float x[VEC];
      load_pack<VEC>(hr + d, x);
      if (rr) {
        float r[VEC];
        load_pack<VEC>(rr + d, r);
#pragma unroll
        for (int k = 0; k < VEC; ++k) x[k] += r[k];
      }
      store_pack<VEC>(ro + d, x);
#pragma unroll
      for (int k = 0; k < VEC; ++k) ss += x[k] * x[k];
    }
    ss = warp_sum(ss);
    const float inv = 1.f / sqrtf(ss / float(D) + eps);
    if (lane == 0) rstd[row] = inv;
    // The second pass rereads what this same lane just wrote (program order; L1/L2 hits).
    TO* no = normed + row * D;
    for (int64_t d = int64_t(lane) * VEC; d < D; d += 32 * VEC) {
      float x[VEC], w[VEC], o[VEC];
      load_pack<VEC>(ro + d, x);
      load_pack<VEC>(weight + d, w);
#pragma unroll
      for (int k = 0; k < VEC; ++k) o[k] = x[k] * inv * w[k];
      store_pack<VEC>(no + d, o);
    }
  }
}

// Block b handles rows [b M / G, (b + 1) M / G); its warps take every kWarps-th row of that range.
// dw_partials (G, D): this block's sum of d_normed * xhat over its rows.
template <int VEC, class TO, class TH>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(const float* __restrict__ residual_out, const float* __restrict__ weight,
                    const float* __restrict__ rstd, const TO* __restrict__ d_normed,
                    const float* __restrict__ d_residual_out, float* __restrict__ d_residual, TH* __restrict__ d_h,
                    float* __restrict__ dw_partials, int64_t M, int64_t D) {
  extern __shared__ float dw_rows[];  // (kWarps, D): one d_weight accumulator row per warp
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float* dw = dw_rows + warp * D;
  // Each lane owns the same columns in every loop below, so the warp needs no synchronization.
  for (int64_t d = int64_t(lane) * VEC; d < D; d += 32 * VEC) {
    const float zero[VEC] = {};
    store_pack<VEC>(dw + d, zero);
  }
  const int64_t begin = int64_t(blockIdx.x) * M / gridDim.x, end = int64_t(blockIdx.x + 1) * M / gridDim.x;
  for (int64_t row = begin + warp; row < end; row += kWarps) {
    const float inv = rstd[row];
    const float* r = residual_out + row * D;
    const TO* dn = d_normed + row * D;
    float dot = 0.f;
    for (int64_t d = int64_t(lane) * VEC; d < D; d += 32 * VEC) {
      float x[VEC], g[VEC], w[VEC], acc[VEC];
      load_pack<VEC>(r + d, x);
      load_pack<VEC>(dn + d, g);
      load_pack<VEC>(weight + d, w);
      load_pack<VEC>(dw + d, acc);
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        const float xhat = x[k] * inv;
        dot += g[k] * w[k] * xhat;
        acc[k] += g[k] * xhat;
      }
      store_pack<VEC>(dw + d, acc);
    }
    dot = warp_sum(dot) / float(D);
    for (int64_t d = int64_t(lane) * VEC; d < D; d += 32 * VEC) {
      float x[VEC], g[VEC], w[VEC], di[VEC];
      load_pack<VEC>(r + d, x);
      load_pack<VEC>(dn + d, g);
      load_pack<VEC>(weight + d, w);
      float dres[VEC] = {};
      if (d_residual_out) load_pack<VEC>(d_residual_out + row * D + d, dres);
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        const float xhat = x[k] * inv;
        di[k] = inv * (g[k] * w[k] - xhat * dot) + dres[k];
      }
      if (d_residual) store_pack<VEC>(d_residual + row * D + d, di);
      if (d_h) store_pack<VEC>(d_h + row * D + d, di);
    }
  }
  __syncthreads();
  for (int64_t d = threadIdx.x; d < D; d += kThreads) {
    float s = 0.f;
    for (int w = 0; w < kWarps; ++w) s += dw_rows[w * D + d];
    dw_partials[int64_t(blockIdx.x) * D + d] = s;
  }
}

// Calls f with std::integral_constant<int, 4> when the packed path applies, else <int, 1>.
template <class F>
void with_vec(bool packed, F&& f) {
  if (packed)
    f(std::integral_constant<int, 4>{});
  else
    f(std::integral_constant<int, 1>{});
}

bool packable(int64_t D, std::initializer_list<std::pair<const void*, size_t>> ptrs) {
  if (D % 4 != 0) return false;
  for (auto [p, elem] : ptrs)
    if (p && !aligned_to(p, 4 * elem)) return false;
  return true;
}

}  // namespace

void add_rms_norm_forward(const void* h, DType h_dt, const float* residual, const float* weight, void* normed,
                          DType out_dt, float* residual_out, float* rstd, int64_t M, int64_t D, double eps,
                          int device) {
  if (M == 0) return;
  cudaStream_t s = stream(device);
  const bool packed =
      packable(D, {{h, dtype_size(h_dt)}, {residual, 4}, {weight, 4}, {normed, dtype_size(out_dt)}, {residual_out, 4}});
  dispatch_f32_bf16(h_dt, "add_rms_norm input", [&](auto* ht) {
    using TH = tag_t<decltype(ht)>;
    dispatch_f32_bf16(out_dt, "add_rms_norm output", [&](auto* ot) {
      using TO = tag_t<decltype(ot)>;
      with_vec(packed, [&](auto vec) {
        forward_kernel<decltype(vec)::value, TH, TO>
            <<<grid_for(M, kWarps), kThreads, 0, s>>>(static_cast<const TH*>(h), residual, weight,
                                                      static_cast<TO*>(normed), residual_out, rstd, M, D, float(eps));
      });
    });
  });
  CUDA_CHECK_LAUNCH();
}

void add_rms_norm_backward(const float* residual_out, const float* weight, const float* rstd, const void* d_normed,
                           DType dn_dt, const float* d_residual_out, float* d_residual, void* d_h, DType h_dt,
                           float* d_weight, int64_t M, int64_t D, int device) {
  if (M == 0) return;
  cudaStream_t s = stream(device);
  const int64_t blocks = std::min<int64_t>((M + kWarps - 1) / kWarps, kMaxBackwardBlocks);
  const size_t smem = size_t(kWarps) * size_t(D) * sizeof(float);
  int smem_limit = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&smem_limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  SERPENT_CHECK(smem <= size_t(smem_limit), "add_rms_norm backward: rows of ", D, " features need ", smem,
                " bytes of shared memory, more than this GPU's ", smem_limit);
  float* partials = static_cast<float*>(CachingAllocator::get().allocate(sizeof(float) * blocks * D, device));
  const bool packed = packable(D, {{residual_out, 4},
                                   {weight, 4},
                                   {d_normed, dtype_size(dn_dt)},
                                   {d_residual_out, 4},
                                   {d_residual, 4},
                                   {d_h, dtype_size(h_dt)}});
  dispatch_f32_bf16(dn_dt, "add_rms_norm output gradient", [&](auto* ot) {
    using TO = tag_t<decltype(ot)>;
    dispatch_f32_bf16(h_dt, "add_rms_norm input gradient", [&](auto* ht) {
      using TH = tag_t<decltype(ht)>;
      with_vec(packed, [&](auto vec) {
        auto kernel = backward_kernel<decltype(vec)::value, TO, TH>;
        if (smem > 48 * 1024)
          CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
        kernel<<<unsigned(blocks), kThreads, smem, s>>>(residual_out, weight, rstd, static_cast<const TO*>(d_normed),
                                                        d_residual_out, d_residual, static_cast<TH*>(d_h), partials, M,
                                                        D);
      });
    });
  });
  CUDA_CHECK_LAUNCH();
  sum_partials(partials, blocks, D, D, d_weight, device);
  // Stream order makes the block safe to hand out again right away.
  CachingAllocator::get().release(partials, device);
}

}  // namespace serpent::cuda
