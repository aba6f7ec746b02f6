// The language-model head fused with its cross-entropy, on the GPU. Per chunk of C rows:
//   logits_c  = h_c @ w^T                                  cuBLAS, into the (C, V) chunk buffer
//   loss, dlogits (in place) = softmax_ce_kernel(logits_c)  one block per row
//   dh_c      = dlogits_c @ w                              cuBLAS, f32 output
//   dw       += dlogits_c^T @ h_c                          cuBLAS, f32 output, accumulated
// then one block sums the row losses and counts the counted rows, in a fixed order.
//
// Cost for mamba-130m at 8 x 2048 tokens (M 16384, D 768, V 50280), bf16 operands: three GEMMs
// of 2 M V D = 1.27 TFLOP each, 3.8 TFLOP in all (~5 ms at ~750 TFLOP/s); the softmax kernel
// reads each bf16 logit twice and writes it once, 3 x 2 x M x V = 4.9 GB (~1.2 ms at 4 TB/s).
// Memory: one chunk of 2^28 logits (512 MiB in bf16) instead of M x V x 4 = 3.3 GB of f32 logits,
// plus the f32 gradient sums dh (M x D) and dw (V x D) that the backward scales.
//
// softmax_ce_kernel, for one row x of V logits with target t (computed in f32):
//   pass 1: running max m and sum s of exp(x - m) per thread (online softmax: one read of x),
//           merged over the block in a fixed tree;  lse = m + log(s);  loss = lse - x[t]
//   pass 2: x[v] <- exp(x[v] - lse) - [v == t]   (the unscaled dlogits)
// Rows whose target is ignore_index get loss 0 and zero dlogits; a target outside [0, V) gets a
// NaN loss and zero dlogits, and is reported through kernels/cuda/index_check.h.
#include <algorithm>
#include <cmath>

#include "kernels/cuda/index_check.cuh"
#include "kernels/cuda/linear_cross_entropy.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda/util.cuh"

namespace serpent::cuda {

namespace {

constexpr int kCeThreads = 256;
constexpr int kLossThreads = 1024;

// Folds (m2, s2) into the running (m, s): s is a sum of exp(x - m).
__device__ __forceinline__ void merge_softmax(float& m, float& s, float m2, float s2) {
  const float mx = fmaxf(m, m2);
  if (mx == -INFINITY) return;  // both empty
  s = s * expf(m - mx) + s2 * expf(m2 - mx);
  m = mx;
}

// Grid: one block per row of the chunk. logits (rows, V) of T, overwritten with dlogits when
// write_grad; targets and row_loss point at the chunk's first row, which is row row0 overall.
template <int VEC, class T, class I>
__global__ void __launch_bounds__(kCeThreads)
    softmax_ce_kernel(T* __restrict__ logits, const I* __restrict__ targets, float* __restrict__ row_loss, int64_t V,
                      int64_t ignore_index, int64_t row0, bool write_grad, BadIndexRecord* bad) {
  const int64_t r = blockIdx.x;
  T* row = logits + r * V;
  const int64_t target = int64_t(targets[r]);
  const bool ignored = target == ignore_index;
  if (ignored || target < 0 || target >= V) {
    if (threadIdx.x == 0) {
      row_loss[r] = ignored ? 0.f : __int_as_float(0x7fc00000);
      if (!ignored) record_bad_index(bad, IndexKind::target, row0 + r, target, V, ignore_index);
    }
    if (write_grad) {
      const float zero[VEC] = {};
      for (int64_t v = int64_t(threadIdx.x) * VEC; v < V; v += int64_t(kCeThreads) * VEC)
        store_pack<VEC>(row + v, zero);
    }
    return;
  }
  // Read before the barriers below, so before any thread overwrites the row.
  const float x_target = threadIdx.x == 0 ? to_compute(row[target]) : 0.f;
  float m = -INFINITY, s = 0.f;
  for (int64_t v = int64_t(threadIdx.x) * VEC; v < V; v += int64_t(kCeThreads) * VEC) {
    float x[VEC];
    load_pack<VEC>(row + v, x);
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      if (x[k] > m) {
        s = s * expf(m - x[k]) + 1.f;
        m = x[k];
      } else {
        s += expf(x[k] - m);
      }
    }
  }
  // Block merge in a fixed tree: lanes by xor shuffles, then warps through shared memory.
  __shared__ float warp_m[32], warp_s[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int offset = 16; offset > 0; offset >>= 1)
    merge_softmax(m, s, __shfl_xor_sync(0xffffffffu, m, offset), __shfl_xor_sync(0xffffffffu, s, offset));
  if (lane == 0) {
    warp_m[warp] = m;
    warp_s[warp] = s;
  }
  __syncthreads();
  if (warp == 0) {
    m = lane < kCeThreads / 32 ? warp_m[lane] : -INFINITY;
    s = lane < kCeThreads / 32 ? warp_s[lane] : 0.f;
    for (int offset = 16; offset > 0; offset >>= 1)
      merge_softmax(m, s, __shfl_xor_sync(0xffffffffu, m, offset), __shfl_xor_sync(0xffffffffu, s, offset));
    if (lane == 0) {
      warp_m[0] = m;
      warp_s[0] = s;
    }
  }
  __syncthreads();
  const float lse = warp_m[0] + logf(warp_s[0]);
  if (threadIdx.x == 0) row_loss[r] = lse - x_target;
  if (!write_grad) return;
  for (int64_t v = int64_t(threadIdx.x) * VEC; v < V; v += int64_t(kCeThreads) * VEC) {
    float x[VEC];
    load_pack<VEC>(row + v, x);
#pragma unroll
    for (int k = 0; k < VEC; ++k) x[k] = expf(x[k] - lse) - (v + k == target ? 1.f : 0.f);
    store_pack<VEC>(row + v, x);
  }
}

// One block: the mean of the counted rows' losses (summed in double, in a fixed order) and their
// number.
template <class I>
__global__ void __launch_bounds__(kLossThreads)
    loss_kernel(const float* __restrict__ row_loss, const I* __restrict__ targets, int64_t M, int64_t ignore_index,
                float* __restrict__ loss, float* __restrict__ count) {
  __shared__ double scratch[32];
  double total = 0, n = 0;
  for (int64_t i = threadIdx.x; i < M; i += kLossThreads) {
    if (int64_t(targets[i]) == ignore_index) continue;
    total += double(row_loss[i]);
    n += 1;
  }
  total = block_sum(total, scratch);
  n = block_sum(n, scratch);
  if (threadIdx.x == 0) {
    *count = float(n);
    *loss = n > 0 ? float(total / n) : __int_as_float(0x7fc00000);
  }
}

template <class T>
__global__ void scale_kernel(const float* __restrict__ raw, T* __restrict__ out, int64_t n,
                             const float* __restrict__ upstream, const float* __restrict__ count) {
  const float c = *count;
  const float factor = c > 0 ? *upstream / c : 0.f;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_compute<T>(raw[i] * factor);
}

template <class F>
void dispatch_targets(DType dt, F&& f) {
  switch (dt) {
    case DType::i32:
      f(static_cast<int32_t*>(nullptr));
      break;
    case DType::i64:
      f(static_cast<int64_t*>(nullptr));
      break;
    default:
      fail("linear_cross_entropy: targets must be i32 or i64, got ", dtype_name(dt));
  }
}

}  // namespace

void linear_cross_entropy_forward(const void* h, const void* w, DType dt, const void* targets, DType target_dt,
                                  int64_t M, int64_t D, int64_t V, int64_t ignore_index, int64_t chunk_rows,
                                  float* loss, float* count, float* dh, float* dw, int device) {
  SERPENT_CHECK(chunk_rows >= 1 && chunk_rows < (int64_t(1) << 31), "linear_cross_entropy: chunk of ", chunk_rows,
                " rows; expected 1 to 2^31 - 1");
  cudaStream_t s = stream(device);
  CachingAllocator& alloc = CachingAllocator::get();
  const size_t es = dtype_size(dt);
  void* logits = alloc.allocate(size_t(chunk_rows * V) * es, device);
  auto* row_loss = static_cast<float*>(alloc.allocate(sizeof(float) * M, device));
  BadIndexRecord* bad = bad_index_record(device);
  const bool write_grad = dh || dw;
  dispatch_f32_bf16(dt, "linear_cross_entropy", [&](auto* tag) {
    using T = tag_t<decltype(tag)>;
    constexpr int kPack = 16 / sizeof(T);
    const bool packed = V % kPack == 0 && aligned_to(logits, 16);
    dispatch_targets(target_dt, [&](auto* ttag) {
      using I = tag_t<decltype(ttag)>;
      const I* tg = static_cast<const I*>(targets);
      for (int64_t c0 = 0; c0 < M; c0 += chunk_rows) {
        const int64_t rows = std::min(chunk_rows, M - c0);
        const T* hc = static_cast<const T*>(h) + c0 * D;
        gemm(false, true, rows, V, D, hc, w, logits, dt, dt, false, device);
        auto launch = [&](auto vec) {
          softmax_ce_kernel<decltype(vec)::value, T, I><<<unsigned(rows), kCeThreads, 0, s>>>(
              static_cast<T*>(logits), tg + c0, row_loss + c0, V, ignore_index, c0, write_grad, bad);
        };
        if (packed)
          launch(std::integral_constant<int, kPack>{});
        else
          launch(std::integral_constant<int, 1>{});
        CUDA_CHECK_LAUNCH();
        if (dh) gemm(false, false, rows, D, V, logits, w, dh + c0 * D, dt, DType::f32, false, device);
        if (dw) gemm(true, false, V, D, rows, logits, hc, dw, dt, DType::f32, c0 > 0, device);
      }
      loss_kernel<I><<<1, kLossThreads, 0, s>>>(row_loss, tg, M, ignore_index, loss, count);
      CUDA_CHECK_LAUNCH();
    });
  });
  publish_bad_index_record(device);
  // Stream order makes the blocks safe to hand out again right away.
  alloc.release(logits, device);
  alloc.release(row_loss, device);
}

void linear_cross_entropy_scale(const float* raw, void* out, DType out_dt, int64_t n, const float* upstream,
                                const float* count, int device) {
  if (n == 0) return;
  cudaStream_t s = stream(device);
  dispatch_f32_bf16(out_dt, "linear_cross_entropy backward", [&](auto* tag) {
    using T = tag_t<decltype(tag)>;
    scale_kernel<T><<<grid_for(n, 256), 256, 0, s>>>(raw, static_cast<T*>(out), n, upstream, count);
  });
  CUDA_CHECK_LAUNCH();
}

}  // namespace serpent::cuda
