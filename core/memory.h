// How much memory a device has free for this process: the budget that a run's estimate
// (train/memory_estimate.h) and other size checks are held to before anything is allocated.
#pragma once

#include <cstdint>
#include <string>

#include "core/device.h"

namespace serpent {

struct MemoryBudget {
  int64_t bytes = 0;  // what this process may still allocate there
  std::string limit;  // what sets it: "MemAvailable", "RLIMIT_AS", "cgroup memory.max", "cudaMemGetInfo"
};

// The cpu: the least of the kernel's MemAvailable, the address-space limit (setrlimit
// RLIMIT_AS) less what this process has mapped, and the cgroup's memory.max less its usage.
// A GPU: the device's free memory.
MemoryBudget memory_budget(Device device);

// The most this process has held there so far, in bytes: the GPU caching allocator's peak of
// tensor bytes, or the cpu's peak resident set size.
int64_t peak_memory(Device device);

}  // namespace serpent
