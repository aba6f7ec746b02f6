// Helpers shared by the model-op kernels (rms_norm, conv1d, embedding, linear_cross_entropy,
// adamw): packed loads and stores that move 8 or 16 bytes per instruction, and the f32/bf16
// dispatch used by kernels that read bf16 activations but keep f32 parameters. .cu files only.
#pragma once

#include <cstdint>
#include <type_traits>

#include "core/cuda/common.cuh"

namespace serpent::cuda {

// N elements that travel as one aligned transaction (N * sizeof(T) is 2, 4, 8 or 16 bytes).
template <class T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

// Loads N elements starting at p (aligned to the pack) as f32.
template <int N, class T>
__device__ __forceinline__ void load_pack(const T* p, float (&out)[N]) {
  const Pack<T, N> pk = *reinterpret_cast<const Pack<T, N>*>(p);
#pragma unroll
  for (int k = 0; k < N; ++k) out[k] = to_compute(pk.v[k]);
}

// Stores N f32 values at p (aligned to the pack), rounded to T.
template <int N, class T>
__device__ __forceinline__ void store_pack(T* p, const float (&in)[N]) {
  Pack<T, N> pk;
#pragma unroll
  for (int k = 0; k < N; ++k) pk.v[k] = from_compute<T>(in[k]);
  *reinterpret_cast<Pack<T, N>*>(p) = pk;
}

inline bool aligned_to(const void* p, size_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

// Calls f with a null pointer of the device type for f32 or bf16; anything else is an error that
// names the op.
template <class F>
void dispatch_f32_bf16(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::f32:
      f(static_cast<float*>(nullptr));
      break;
    case DType::bf16:
      f(static_cast<__nv_bfloat16*>(nullptr));
      break;
    default:
      fail(op, ": expected an f32 or bf16 tensor on the GPU, got ", dtype_name(dt));
  }
}

template <class Tag>
using tag_t = std::remove_pointer_t<Tag>;

}  // namespace serpent::cuda
