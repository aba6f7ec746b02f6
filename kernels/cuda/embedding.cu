// Embedding lookup and its deterministic gradient on the GPU. The CPU twin is
// kernels/cpu/embedding.h:
//   out[i, :] = weight[ids[i], :];   dweight[v, :] = sum over i with ids[i] = v of dout[i, :]
//
// Forward: one warp per output row, copying the weight row in 16-byte packs when D and the
// pointers allow. Pure data movement: M x D x sizeof(T) read and written (8 x 2048 tokens of
// mamba-130m: 50 MB each way in f32, ~25 us).
//
// Backward: rather than float atomics (fast but their order, and so the rounding, varies run to
// run), the (id, position) pairs are radix-sorted by id (stable: positions stay ascending within
// an id) and one warp per distinct id sums that id's dout rows in position order, which is the
// order of the CPU loop, so f32 results equal the CPU's bit for bit. Sorting M keys is a few
// microseconds; the cost is dominated by zeroing dweight (V x D: 154 MB for 50280 x 768 in f32).
#include <cub/device/device_radix_sort.cuh>

#include "kernels/cuda/embedding.h"
#include "kernels/cuda/index_check.cuh"
#include "kernels/cuda/util.cuh"

namespace serpent::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;

template <int VEC, class T, class I>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(const T* __restrict__ weight, const I* __restrict__ ids, T* __restrict__ out, int64_t M, int64_t V,
                   int64_t D, BadIndexRecord* bad) {
  const int lane = threadIdx.x & 31;
  for (int64_t row = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5); row < M; row += int64_t(gridDim.x) * kWarps) {
    const int64_t id = int64_t(ids[row]);
    T* o = out + row * D;
    if (id >= 0 && id < V) {
      const T* w = weight + id * D;
      for (int64_t d = int64_t(lane) * VEC; d < D; d += 32 * VEC)
        *reinterpret_cast<Pack<T, VEC>*>(o + d) = *reinterpret_cast<const Pack<T, VEC>*>(w + d);
      continue;
    }
    if (lane == 0) record_bad_index(bad, IndexKind::token_id, row, id, V, 0);
    float nan[VEC];
#pragma unroll
    for (int k = 0; k < VEC; ++k) nan[k] = __int_as_float(0x7fc00000);
    for (int64_t d = int64_t(lane) * VEC; d < D; d += 32 * VEC) store_pack<VEC>(o + d, nan);
  }
}

// keys[i] = ids[i], or V for an id outside [0, V) (sorted last and skipped); positions[i] = i.
template <class I>
__global__ void keys_kernel(const I* __restrict__ ids, uint32_t* __restrict__ keys, int32_t* __restrict__ positions,
                            int64_t M, int64_t V) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < M; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t id = int64_t(ids[i]);
    keys[i] = id >= 0 && id < V ? uint32_t(id) : uint32_t(V);
    positions[i] = int32_t(i);
  }
}

// One warp per sorted index i that starts a run of equal keys: sums the run's dout rows in order.
template <class T>
__global__ void __launch_bounds__(kThreads)
    segment_sum_kernel(const uint32_t* __restrict__ keys, const int32_t* __restrict__ positions,
                       const T* __restrict__ dout, T* __restrict__ dweight, int64_t M, int64_t V, int64_t D) {
  const int lane = threadIdx.x & 31;
  for (int64_t i = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5); i < M; i += int64_t(gridDim.x) * kWarps) {
    const uint32_t key = keys[i];
    if (key == uint32_t(V) || (i > 0 && keys[i - 1] == key)) continue;
    int64_t end = i + 1;
    while (end < M && keys[end] == key) ++end;
    T* row = dweight + int64_t(key) * D;
    for (int64_t d = lane; d < D; d += 32) {
      float acc = 0.f;
      for (int64_t j = i; j < end; ++j) acc += to_compute(dout[int64_t(positions[j]) * D + d]);
      row[d] = from_compute<T>(acc);
    }
  }
}

template <class F>
void dispatch_ids(DType id_dt, F&& f) {
  switch (id_dt) {
    case DType::i32:
      f(static_cast<int32_t*>(nullptr));
      break;
    case DType::i64:
      f(static_cast<int64_t*>(nullptr));
      break;
    default:
      fail("embedding: ids must be i32 or i64, got ", dtype_name(id_dt));
  }
}

}  // namespace

void embedding_forward(const void* weight, DType dt, const void* ids, DType id_dt, void* out, int64_t M, int64_t V,
                       int64_t D, int device) {
  if (M == 0) return;
  cudaStream_t s = stream(device);
  BadIndexRecord* bad = bad_index_record(device);
  dispatch_f32_bf16(dt, "embedding", [&](auto* wt) {
    using T = tag_t<decltype(wt)>;
    constexpr int kPack = 16 / sizeof(T);
    const bool packed = D % kPack == 0 && aligned_to(weight, 16) && aligned_to(out, 16);
    dispatch_ids(id_dt, [&](auto* it) {
      using I = tag_t<decltype(it)>;
      auto launch = [&](auto vec) {
        forward_kernel<decltype(vec)::value, T, I><<<grid_for(M, kWarps), kThreads, 0, s>>>(
            static_cast<const T*>(weight), static_cast<const I*>(ids), static_cast<T*>(out), M, V, D, bad);
      };
      if (packed)
        launch(std::integral_constant<int, kPack>{});
      else
        launch(std::integral_constant<int, 1>{});
    });
  });
  CUDA_CHECK_LAUNCH();
  publish_bad_index_record(device);
}

void embedding_backward(const void* ids, DType id_dt, const void* dout, DType dt, void* dweight, int64_t M, int64_t V,
                        int64_t D, int device) {
  SERPENT_CHECK(M < (int64_t(1) << 31) && V < (int64_t(1) << 32) - 1, "embedding backward: ", M,
                " ids over a vocabulary of ", V, " exceed the GPU kernel's limits (2^31 ids, 2^32 - 1 rows)");
  cudaStream_t s = stream(device);
  CUDA_CHECK(cudaMemsetAsync(dweight, 0, size_t(V * D) * dtype_size(dt), s));
  if (M == 0) return;
  CachingAllocator& alloc = CachingAllocator::get();
  auto* keys = static_cast<uint32_t*>(alloc.allocate(sizeof(uint32_t) * M, device));
  auto* sorted_keys = static_cast<uint32_t*>(alloc.allocate(sizeof(uint32_t) * M, device));
  auto* positions = static_cast<int32_t*>(alloc.allocate(sizeof(int32_t) * M, device));
  auto* sorted_positions = static_cast<int32_t*>(alloc.allocate(sizeof(int32_t) * M, device));
  dispatch_ids(id_dt, [&](auto* it) {
    using I = tag_t<decltype(it)>;
    keys_kernel<I><<<grid_for(M, 256), 256, 0, s>>>(static_cast<const I*>(ids), keys, positions, M, V);
  });
  CUDA_CHECK_LAUNCH();
  int end_bit = 1;  // keys are at most V
  while (end_bit < 32 && (uint64_t(1) << end_bit) <= uint64_t(V)) ++end_bit;
  size_t temp_bytes = 0;
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys, sorted_keys, positions, sorted_positions,
                                             int(M), 0, end_bit, s));
  void* temp = alloc.allocate(std::max<size_t>(temp_bytes, 1), device);
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys, sorted_keys, positions, sorted_positions, int(M),
                                             0, end_bit, s));
  dispatch_f32_bf16(dt, "embedding backward", [&](auto* wt) {
    using T = tag_t<decltype(wt)>;
    segment_sum_kernel<T><<<grid_for(M, kWarps), kThreads, 0, s>>>(
        sorted_keys, sorted_positions, static_cast<const T*>(dout), static_cast<T*>(dweight), M, V, D);
  });
  CUDA_CHECK_LAUNCH();
  for (void* p : {static_cast<void*>(keys), static_cast<void*>(sorted_keys), static_cast<void*>(positions),
                  static_cast<void*>(sorted_positions), temp})
    alloc.release(p, device);
}

}  // namespace serpent::cuda
