#include "core/cuda/runtime.h"

#include <algorithm>

#include "core/error.h"

namespace serpent::cuda {

void check_cuda(cudaError_t err, const char* expr, const char* file, int line) {
  if (err == cudaSuccess) return;
  fail("CUDA error ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ") in ", expr, " at ", file, ":", line);
}

void check_cublas(cublasStatus_t status, const char* expr, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  fail("cuBLAS error ", cublasGetStatusName(status), " (", cublasGetStatusString(status), ") in ", expr, " at ", file,
       ":", line);
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

namespace {

// Per-device handles, created on first use and kept for the life of the process.
struct DeviceContext {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cublasLtHandle_t blas_lt = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

constexpr size_t kGemmWorkspace = 32u << 20;

class Contexts {
 public:
  static Contexts& get() {
    static Contexts instance;
    return instance;
  }
  DeviceContext& at(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    SERPENT_CHECK(device >= 0 && device < device_count(), "cuda:", device, " does not exist (", device_count(),
                  " CUDA devices visible)");
    DeviceContext& c = contexts_[device];
    CUDA_CHECK(cudaSetDevice(device));
    if (!c.stream) {
      CUDA_CHECK(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
      CUBLAS_CHECK(cublasCreate(&c.blas));
      CUBLAS_CHECK(cublasSetStream(c.blas, c.stream));
      CUBLAS_CHECK(cublasLtCreate(&c.blas_lt));
      CUDA_CHECK(cudaMalloc(&c.workspace, kGemmWorkspace));
      c.workspace_bytes = kGemmWorkspace;
      CUBLAS_CHECK(cublasSetWorkspace(c.blas, c.workspace, c.workspace_bytes));
    }
    return c;
  }

 private:
  std::mutex mutex_;
  std::map<int, DeviceContext> contexts_;
};

}  // namespace

cudaStream_t stream(int device) {
  return Contexts::get().at(device).stream;
}
void synchronize(int device) {
  CUDA_CHECK(cudaStreamSynchronize(stream(device)));
}
cublasHandle_t cublas(int device) {
  return Contexts::get().at(device).blas;
}
cublasLtHandle_t cublas_lt(int device) {
  return Contexts::get().at(device).blas_lt;
}
void* gemm_workspace(int device, size_t* bytes) {
  DeviceContext& c = Contexts::get().at(device);
  *bytes = c.workspace_bytes;
  return c.workspace;
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (dst_device.is_cuda() && src_device.is_cuda()) {
    if (dst_device.index == src_device.index) {
      CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, stream(dst_device.index)));
    } else {
      // Order after the source's pending work, then copy peer to peer.
      synchronize(src_device.index);
      CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device.index, src, src_device.index, nbytes, stream(dst_device.index)));
    }
    return;
  }
  // Host memory here is pageable and owned by the caller: wait for the copy before returning.
  const int device = dst_device.is_cuda() ? dst_device.index : src_device.index;
  const cudaMemcpyKind kind = dst_device.is_cuda() ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
  cudaStream_t s = stream(device);
  CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, kind, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
}

void* host_alloc_pinned(size_t nbytes) {
  void* ptr = nullptr;
  if (cudaHostAlloc(&ptr, nbytes, cudaHostAllocDefault) != cudaSuccess) {
    cudaGetLastError();  // a failed pinning is not a sticky error: clear it
    return nullptr;
  }
  return ptr;
}

void host_free_pinned(void* ptr) {
  // Called from destructors, and at exit after the driver may be gone: nothing to report then.
  if (ptr) cudaFreeHost(ptr);
}

EventTimer::EventTimer(int device) : device_(device) {
  stream(device);
  CUDA_CHECK(cudaEventCreate(&begin_));
  CUDA_CHECK(cudaEventCreate(&end_));
}
EventTimer::~EventTimer() {
  cudaEventDestroy(begin_);
  cudaEventDestroy(end_);
}
void EventTimer::start() {
  CUDA_CHECK(cudaEventRecord(begin_, stream(device_)));
}
double EventTimer::stop() {
  CUDA_CHECK(cudaEventRecord(end_, stream(device_)));
  CUDA_CHECK(cudaEventSynchronize(end_));
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, begin_, end_));
  return ms;
}

namespace {
constexpr size_t kSmallLimit = 1u << 20;
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = 2u << 20;

size_t round_size(size_t n) {
  if (n < kSmallLimit) return std::max<size_t>(kSmallRound, (n + kSmallRound - 1) / kSmallRound * kSmallRound);
  return (n + kLargeRound - 1) / kLargeRound * kLargeRound;
}
}  // namespace

CachingAllocator& CachingAllocator::get() {
  static CachingAllocator instance;
  return instance;
}

CachingAllocator::DeviceState& CachingAllocator::state(int device) {
  return devices_[device];
}

void CachingAllocator::free_cached(DeviceState& s, int device) {
  CUDA_CHECK(cudaSetDevice(device));
  for (auto& [size, ptr] : s.cached) {
    CUDA_CHECK(cudaFree(ptr));
    s.stats.reserved -= size;
  }
  s.cached.clear();
}

void* CachingAllocator::allocate(size_t nbytes, int device) {
  if (nbytes == 0) return nullptr;
  stream(device);  // validates the device and makes it current
  const size_t size = round_size(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  DeviceState& s = state(device);
  void* ptr = nullptr;
  size_t block = size;
  auto it = s.cached.lower_bound(size);
  if (it != s.cached.end() && it->first - size <= std::max(size / 8, kLargeRound) &&
      (size >= kSmallLimit || it->first == size)) {
    block = it->first;
    ptr = it->second;
    s.cached.erase(it);
  } else {
    cudaError_t err = cudaMalloc(&ptr, size);
    if (err != cudaSuccess) {
      cudaGetLastError();
      free_cached(s, device);  // give the cache back and try once more
      err = cudaMalloc(&ptr, size);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      fail("out of memory on cuda:", device, " allocating ", size, " bytes (", double(size) / (1 << 30), " GiB); ",
           double(s.stats.allocated) / (1 << 30), " GiB in use by tensors, ", double(free_b) / (1 << 30), " of ",
           double(total_b) / (1 << 30), " GiB free on the device");
    }
    ++s.stats.device_mallocs;
    s.stats.reserved += size;
    s.stats.peak_reserved = std::max(s.stats.peak_reserved, s.stats.reserved);
  }
  s.live[ptr] = block;
  s.stats.allocated += block;
  s.stats.peak_allocated = std::max(s.stats.peak_allocated, s.stats.allocated);
  return ptr;
}

void CachingAllocator::release(void* ptr, int device) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  DeviceState& s = state(device);
  auto it = s.live.find(ptr);
  if (it == s.live.end()) return;
  s.stats.allocated -= it->second;
  s.cached.emplace(it->second, ptr);
  s.live.erase(it);
}

MemoryStats CachingAllocator::stats(int device) {
  std::lock_guard<std::mutex> lock(mutex_);
  return state(device).stats;
}

void CachingAllocator::reset_peak(int device) {
  std::lock_guard<std::mutex> lock(mutex_);
  DeviceState& s = state(device);
  s.stats.peak_allocated = s.stats.allocated;
  s.stats.peak_reserved = s.stats.reserved;
}

void CachingAllocator::empty_cache(int device) {
  std::lock_guard<std::mutex> lock(mutex_);
  free_cached(state(device), device);
}

}  // namespace serpent::cuda
