// Device fills, dtype conversions and random fills. Random element i is philox of
// (seed, offset + i) computed in double exactly as on the host (core/rng.h), then rounded.
#include "core/cuda/common.cuh"
#include "core/cuda/convert.h"
#include "core/rng.h"

namespace serpent::cuda {

namespace {

constexpr int kThreads = 256;

template <class T>
__device__ __forceinline__ T from_double(double v) {
  return T(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_double<__nv_bfloat16>(double v) {
  return __float2bfloat16_rn(float(v));
}
template <class T>
__device__ __forceinline__ double to_double(T v) {
  return double(v);
}
template <>
__device__ __forceinline__ double to_double<__nv_bfloat16>(__nv_bfloat16 v) {
  return double(__bfloat162float(v));
}

template <class T>
__global__ void fill_kernel(T* dst, int64_t n, double value) {
  const T v = from_double<T>(value);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = v;
}

template <class D, class S>
__global__ void convert_kernel(D* dst, const S* src, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    if constexpr (std::is_same_v<D, __nv_bfloat16> && std::is_same_v<S, float>)
      dst[i] = __float2bfloat16_rn(src[i]);  // one rounding, as the host does
    else
      dst[i] = from_double<D>(to_double(src[i]));
  }
}

template <class T>
__global__ void random_kernel(T* dst, int64_t n, uint64_t seed, uint64_t offset, double a, double b, bool normal) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const double v =
        normal ? philox::normal(seed, offset + uint64_t(i), a, b) : philox::uniform(seed, offset + uint64_t(i), a, b);
    dst[i] = from_double<T>(v);
  }
}

// Calls f with a null pointer of the device type for any dtype.
template <class F>
void dispatch_any(DType dt, F&& f) {
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
    case DType::i32:
      f(static_cast<int32_t*>(nullptr));
      break;
    case DType::i64:
      f(static_cast<int64_t*>(nullptr));
      break;
  }
}

}  // namespace

void fill(void* dst, DType dt, int64_t n, double value, int device) {
  if (n == 0) return;
  cudaStream_t s = stream(device);
  dispatch_any(dt, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    fill_kernel<T><<<grid_for(n, kThreads), kThreads, 0, s>>>(static_cast<T*>(dst), n, value);
  });
  CUDA_CHECK_LAUNCH();
}

void convert(void* dst, DType dst_dt, const void* src, DType src_dt, int64_t n, int device) {
  if (n == 0) return;
  cudaStream_t s = stream(device);
  dispatch_any(dst_dt, [&](auto* dtag) {
    using D = std::remove_pointer_t<decltype(dtag)>;
    dispatch_any(src_dt, [&](auto* stag) {
      using S = std::remove_pointer_t<decltype(stag)>;
      convert_kernel<D, S>
          <<<grid_for(n, kThreads), kThreads, 0, s>>>(static_cast<D*>(dst), static_cast<const S*>(src), n);
    });
  });
  CUDA_CHECK_LAUNCH();
}

void fill_normal(void* dst, DType dt, int64_t n, uint64_t seed, uint64_t offset, double mean, double stddev,
                 int device) {
  if (n == 0) return;
  cudaStream_t s = stream(device);
  dispatch_device_float(dt, "randn", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    random_kernel<T>
        <<<grid_for(n, kThreads), kThreads, 0, s>>>(static_cast<T*>(dst), n, seed, offset, mean, stddev, true);
  });
  CUDA_CHECK_LAUNCH();
}

void fill_uniform(void* dst, DType dt, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi, int device) {
  if (n == 0) return;
  cudaStream_t s = stream(device);
  dispatch_device_float(dt, "uniform", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    random_kernel<T><<<grid_for(n, kThreads), kThreads, 0, s>>>(static_cast<T*>(dst), n, seed, offset, lo, hi, false);
  });
  CUDA_CHECK_LAUNCH();
}

}  // namespace serpent::cuda
