#include "core/storage.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"
#ifdef SERPENT_CUDA
#include "core/cuda/runtime.h"
#endif

namespace serpent {

namespace {
constexpr size_t kCpuAlignment = 64;  // one cache line, and what AVX-512 loads want
}

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (device.is_cpu()) {
    size_t rounded = (nbytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
    data_ = rounded ? std::aligned_alloc(kCpuAlignment, rounded) : nullptr;
    SERPENT_CHECK(data_ || rounded == 0, "out of host memory allocating ", nbytes, " bytes");
    return;
  }
#ifdef SERPENT_CUDA
  data_ = cuda::CachingAllocator::get().allocate(nbytes, device.index);
#else
  fail("cannot allocate on ", device.str(), ": this build of serpent has no CUDA backend");
#endif
}

std::shared_ptr<Storage> Storage::pinned_host(size_t nbytes) {
#ifdef SERPENT_CUDA
  if (nbytes > 0 && cuda::device_count() > 0) {
    if (void* ptr = cuda::host_alloc_pinned(nbytes)) {
      auto s = std::make_shared<Storage>(0, Device::cpu());
      s->data_ = ptr;
      s->nbytes_ = nbytes;
      s->pinned_ = true;
      return s;
    }
  }
#endif
  return std::make_shared<Storage>(nbytes, Device::cpu());
}

Storage::~Storage() {
  if (device_.is_cpu()) {
#ifdef SERPENT_CUDA
    if (pinned_) {
      cuda::host_free_pinned(data_);
      return;
    }
#endif
    std::free(data_);
    return;
  }
#ifdef SERPENT_CUDA
  cuda::CachingAllocator::get().release(data_, device_.index);
#endif
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
#ifdef SERPENT_CUDA
  cuda::copy_bytes(dst, dst_device, src, src_device, nbytes);
#else
  fail("cannot copy between ", src_device.str(), " and ", dst_device.str(),
       ": this build of serpent has no CUDA backend");
#endif
}

int cuda_device_count() {
#ifdef SERPENT_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

}  // namespace serpent
