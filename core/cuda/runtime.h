// The CUDA runtime layer: error checks that name file and line, one compute stream per device,
// host/device copies, cuBLAS handles and the caching allocator. Host C++ (compiled by g++), built
// only with the CUDA backend.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/device.h"

#define CUDA_CHECK(expr) ::serpent::cuda::check_cuda((expr), #expr, __FILE__, __LINE__)
#define CUBLAS_CHECK(expr) ::serpent::cuda::check_cublas((expr), #expr, __FILE__, __LINE__)
// After a kernel launch: reports launch-configuration errors at the launch site.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

namespace serpent::cuda {

void check_cuda(cudaError_t err, const char* expr, const char* file, int line);
void check_cublas(cublasStatus_t status, const char* expr, const char* file, int line);

int device_count();  // 0 without a driver or device
// Makes `device` current for this thread and returns its compute stream.
cudaStream_t stream(int device);
void synchronize(int device);
cublasHandle_t cublas(int device);
cublasLtHandle_t cublas_lt(int device);
// A device buffer for cuBLASLt's workspace, kept for the process lifetime.
void* gemm_workspace(int device, size_t* bytes);
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);
// Page-locked host memory, which device<->host copies read and write at the bus's speed;
// nullptr when the driver cannot pin that much (the caller falls back to pageable memory).
void* host_alloc_pinned(size_t nbytes);
void host_free_pinned(void* ptr);

// Times device work on a device's compute stream with CUDA events: start() and stop() enqueue
// events; stop() waits for the second one and returns the elapsed milliseconds.
class EventTimer {
 public:
  explicit EventTimer(int device);
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  void start();
  double stop();

 private:
  int device_;
  cudaEvent_t begin_ = nullptr, end_ = nullptr;
};

struct MemoryStats {
  size_t allocated = 0;       // bytes in live tensors (rounded block sizes)
  size_t peak_allocated = 0;  // high-water mark of allocated since the last reset
  size_t reserved = 0;        // bytes held from cudaMalloc, live or cached
  size_t peak_reserved = 0;
  int64_t device_mallocs = 0;  // cudaMalloc calls so far: flat in a steady-state training step
};

// Keeps freed device blocks for reuse so that a training step in the steady state never calls
// cudaMalloc or cudaFree (both synchronize the device). Every tensor is used on its device's one
// compute stream, so a block freed by the host can be handed out again at once: stream order
// guarantees the earlier kernels finish before later ones touch it. Blocks are not split; small
// requests are rounded to 512 bytes and large ones to 2 MiB, and a cached block serves a request
// only if it is at most 1/8 (or 2 MiB) larger, which keeps the waste bounded.
class CachingAllocator {
 public:
  static CachingAllocator& get();
  void* allocate(size_t nbytes, int device);
  void release(void* ptr, int device);
  MemoryStats stats(int device);
  void reset_peak(int device);
  void empty_cache(int device);  // gives cached blocks back to the driver

 private:
  struct DeviceState {
    std::unordered_map<void*, size_t> live;  // ptr -> block size
    std::multimap<size_t, void*> cached;     // block size -> ptr
    MemoryStats stats;
  };
  DeviceState& state(int device);
  void free_cached(DeviceState& s, int device);

  std::mutex mutex_;
  std::map<int, DeviceState> devices_;
};

}  // namespace serpent::cuda
