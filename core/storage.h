// Refcounted device memory. A Storage owns one allocation on one device; tensors share it
// through shared_ptr, so views (reshape, narrow) cost nothing and the memory goes back to its
// allocator when the last view dies.
#pragma once

#include <cstddef>
#include <memory>

#include "core/device.h"

namespace serpent {

class Storage {
 public:
  Storage(size_t nbytes, Device device);
  ~Storage();
  // Host memory that the CUDA driver has page-locked, so that copies from and to a GPU run at the
  // bus's speed without staging; plain host memory in a build without CUDA, on a machine without
  // a GPU, or when the driver cannot pin that much (pinned() says which it got).
  static std::shared_ptr<Storage> pinned_host(size_t nbytes);
  bool pinned() const { return pinned_; }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  bool pinned_ = false;
};

// Copies nbytes between any two devices (host<->device, device<->device, host<->host).
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);

// Number of CUDA devices usable by this process (0 on machines without a GPU or builds
// without CUDA).
int cuda_device_count();

}  // namespace serpent
