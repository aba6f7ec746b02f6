#include "core/threads.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"

namespace serpent {

namespace {

int cores() {
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? int(n) : 1;
}

// Other processes running now: /proc/stat's procs_running (this one included, hence - 1),
// sampled a few times over 40 ms and the median taken. The load average would lag by a minute
// either way: a machine that just went idle still shows the load it had.
int busy_cores() {
  std::vector<int> samples;
  for (int i = 0; i < 5; ++i) {
    if (i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::ifstream in("/proc/stat");
    for (std::string key; in >> key;) {
      if (key != "procs_running") continue;
      int n = 1;
      in >> n;
      samples.push_back(std::max(0, n - 1));
      break;
    }
  }
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

int omp_env_threads() {
  const char* v = std::getenv("OMP_NUM_THREADS");
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return end != v && n > 0 ? int(n) : 0;
}

}  // namespace

int choose_threads(int64_t requested) {
  SERPENT_CHECK(requested >= 0, "threads must be 0 (auto) or positive, got ", requested);
  if (requested > 0) return int(requested);
  if (const int env = omp_env_threads()) return env;
  return std::max(1, cores() - busy_cores());
}

std::string use_threads(int64_t requested) {
  const int n = choose_threads(requested);
  omp_set_num_threads(n);
  if (requested > 0) return str_cat(n, n == 1 ? " thread" : " threads");
  if (omp_env_threads()) return str_cat(n, n == 1 ? " thread" : " threads", " (OMP_NUM_THREADS)");
  return str_cat(n, n == 1 ? " thread" : " threads", " (auto: ", cores(), " cores, ", cores() - n, " busy)");
}

}  // namespace serpent
