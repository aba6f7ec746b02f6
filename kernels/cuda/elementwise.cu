// Elementwise kernels, the scalar sum and column copies on the GPU; CPU twins in
// kernels/cpu/elementwise.h (same formulas, computed in f32 for bf16 and f32, f64 for f64).
#include "core/cuda/common.cuh"
#include "kernels/cuda/elementwise.h"

namespace serpent::cuda {

namespace {

constexpr int kThreads = 256;

template <class C>
__device__ __forceinline__ C sigmoid(C v) {
  return C(1) / (C(1) + exp(-v));
}

template <class C>
__device__ __forceinline__ C apply_unary(cpu::Unary op, C v) {
  switch (op) {
    case cpu::Unary::exp:
      return exp(v);
    case cpu::Unary::silu:
      return v * sigmoid(v);
    case cpu::Unary::softplus:
      return v > C(20) ? v : log1p(exp(v));
  }
  return v;
}

template <class C>
__device__ __forceinline__ C unary_grad(cpu::Unary op, C v) {
  switch (op) {
    case cpu::Unary::exp:
      return exp(v);
    case cpu::Unary::silu: {
      const C s = sigmoid(v);
      return s * (C(1) + v * (C(1) - s));
    }
    case cpu::Unary::softplus:
      return v > C(20) ? C(1) : sigmoid(v);
  }
  return C(0);
}

#define GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

template <class T>
__global__ void binary_kernel(cpu::Binary op, const T* a, const T* b, T* out, int64_t n) {
  using C = compute_t<T>;
  GRID_STRIDE(i, n) {
    const C x = to_compute(a[i]), y = to_compute(b[i]);
    const C r = op == cpu::Binary::add ? x + y : op == cpu::Binary::sub ? x - y : x * y;
    out[i] = from_compute<T>(r);
  }
}

template <class T>
__global__ void unary_kernel(cpu::Unary op, const T* a, T* out, int64_t n) {
  GRID_STRIDE(i, n) out[i] = from_compute<T>(apply_unary(op, to_compute(a[i])));
}

template <class T>
__global__ void unary_backward_kernel(cpu::Unary op, const T* x, const T* dy, T* dx, int64_t n) {
  GRID_STRIDE(i, n) dx[i] = from_compute<T>(to_compute(dy[i]) * unary_grad(op, to_compute(x[i])));
}

template <class T>
__global__ void scale_kernel(const T* a, double s, T* out, int64_t n) {
  using C = compute_t<T>;
  GRID_STRIDE(i, n) out[i] = from_compute<T>(to_compute(a[i]) * C(s));
}

// Deterministic two-pass sum: each block writes its partial, then one block adds the partials in
// order. No atomics, so the result is the same on every run.
template <class T>
__global__ void partial_sum_kernel(const T* a, int64_t n, compute_t<T>* partials) {
  using C = compute_t<T>;
  __shared__ C scratch[32];
  C acc = 0;
  GRID_STRIDE(i, n) acc += to_compute(a[i]);
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

template <class T>
__global__ void final_sum_kernel(const compute_t<T>* partials, int count, T* out) {
  using C = compute_t<T>;
  __shared__ C scratch[32];
  C acc = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) *out = from_compute<T>(acc);
}

__global__ void copy_columns_kernel(const char* src, char* dst, int64_t rows, int64_t cols, int64_t start, int64_t len,
                                    int elem, bool scatter) {
  const int64_t n = rows * len;
  GRID_STRIDE(i, n) {
    const int64_t r = i / len, c = i % len;
    const char* from = scatter ? dst + i * elem : src + (r * cols + start + c) * elem;
    char* to = scatter ? const_cast<char*>(src) + (r * cols + start + c) * elem : dst + i * elem;
    for (int k = 0; k < elem; ++k) to[k] = from[k];
  }
}

}  // namespace

void binary(cpu::Binary op, const void* a, const void* b, void* out, int64_t n, DType dt, int device) {
  if (n == 0) return;
  cudaStream_t s = stream(device);
  dispatch_device_float(dt, "binary", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    binary_kernel<T><<<grid_for(n, kThreads), kThreads, 0, s>>>(op, static_cast<const T*>(a), static_cast<const T*>(b),
                                                                static_cast<T*>(out), n);
  });
  CUDA_CHECK_LAUNCH();
}

void unary(cpu::Unary op, const void* a, void* out, int64_t n, DType dt, int device) {
  if (n == 0) return;
  cudaStream_t s = stream(device);
  dispatch_device_float(dt, "unary", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    unary_kernel<T><<<grid_for(n, kThreads), kThreads, 0, s>>>(op, static_cast<const T*>(a), static_cast<T*>(out), n);
  });
  CUDA_CHECK_LAUNCH();
}

void unary_backward(cpu::Unary op, const void* x, const void* dy, void* dx, int64_t n, DType dt, int device) {
  if (n == 0) return;
  cudaStream_t s = stream(device);
  dispatch_device_float(dt, "unary backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    unary_backward_kernel<T><<<grid_for(n, kThreads), kThreads, 0, s>>>(
        op, static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(dx), n);
  });
  CUDA_CHECK_LAUNCH();
}

void scale(const void* a, double sc, void* out, int64_t n, DType dt, int device) {
  if (n == 0) return;
  cudaStream_t s = stream(device);
  dispatch_device_float(dt, "scale", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    scale_kernel<T><<<grid_for(n, kThreads), kThreads, 0, s>>>(static_cast<const T*>(a), sc, static_cast<T*>(out), n);
  });
  CUDA_CHECK_LAUNCH();
}

void sum(const void* a, int64_t n, DType dt, void* out, int device) {
  cudaStream_t s = stream(device);
  dispatch_device_float(dt, "sum", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using C = compute_t<T>;
    const int blocks = int(std::min<int64_t>(1024, std::max<int64_t>(1, (n + kThreads - 1) / kThreads)));
    void* partials = CachingAllocator::get().allocate(sizeof(C) * blocks, device);
    partial_sum_kernel<T><<<blocks, kThreads, 0, s>>>(static_cast<const T*>(a), n, static_cast<C*>(partials));
    CUDA_CHECK_LAUNCH();
    final_sum_kernel<T><<<1, 1024, 0, s>>>(static_cast<const C*>(partials), blocks, static_cast<T*>(out));
    CUDA_CHECK_LAUNCH();
    // Stream order makes the block safe to hand out again right away.
    CachingAllocator::get().release(partials, device);
  });
}

void copy_columns(const void* src, void* dst, int64_t rows, int64_t cols, int64_t start, int64_t len, DType dt,
                  bool scatter, int device) {
  const int64_t n = rows * len;
  if (n == 0) return;
  copy_columns_kernel<<<grid_for(n, kThreads), kThreads, 0, stream(device)>>>(
      static_cast<const char*>(src), static_cast<char*>(dst), rows, cols, start, len, int(dtype_size(dt)), scatter);
  CUDA_CHECK_LAUNCH();
}

}  // namespace serpent::cuda
