#include "core/memory.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/error.h"
#ifdef SERPENT_CUDA
#include <cuda_runtime.h>

#include "core/cuda/runtime.h"
#endif

namespace serpent {

namespace {

// A "Key: N kB" line of a /proc file, in bytes; -1 when absent.
int64_t proc_kb(const char* path, const std::string& key) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream fields(line.substr(key.size() + 1));
    int64_t kb = -1;
    fields >> kb;
    return kb < 0 ? -1 : kb * 1024;
  }
  return -1;
}

// A number in a cgroup file; -1 when absent or "max".
int64_t cgroup_value(const char* path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text == "max") return -1;
  try {
    return std::stoll(text);
  } catch (const std::exception&) {
    return -1;
  }
}

void lower_to(MemoryBudget& b, int64_t bytes, const char* limit) {
  if (bytes < 0) return;
  if (b.limit.empty() || bytes < b.bytes) b = {bytes, limit};
}

}  // namespace

MemoryBudget memory_budget(Device device) {
  MemoryBudget b;
  if (device.is_cuda()) {
#ifdef SERPENT_CUDA
    CUDA_CHECK(cudaSetDevice(device.index));
    size_t free = 0, total = 0;
    CUDA_CHECK(cudaMemGetInfo(&free, &total));
    return {int64_t(free), "cudaMemGetInfo"};
#else
    fail("this build of serpent has no CUDA backend");
#endif
  }
  lower_to(b, proc_kb("/proc/meminfo", "MemAvailable"), "MemAvailable");
  rlimit as{};
  if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) {
    const int64_t mapped = std::max<int64_t>(0, proc_kb("/proc/self/status", "VmSize"));
    lower_to(b, std::max<int64_t>(0, int64_t(as.rlim_cur) - mapped), "RLIMIT_AS");
  }
  const int64_t cg_max = cgroup_value("/sys/fs/cgroup/memory.max");
  if (cg_max >= 0)
    lower_to(b, std::max<int64_t>(0, cg_max - cgroup_value("/sys/fs/cgroup/memory.current")), "cgroup memory.max");
  if (b.limit.empty()) b = {int64_t(1) << 62, "none found"};
  return b;
}

int64_t peak_memory(Device device) {
  if (device.is_cuda()) {
#ifdef SERPENT_CUDA
    return int64_t(cuda::CachingAllocator::get().stats(device.index).peak_allocated);
#else
    fail("this build of serpent has no CUDA backend");
#endif
  }
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return int64_t(u.ru_maxrss) * 1024;  // Linux reports kB
}

}  // namespace serpent
