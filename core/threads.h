// How many threads the CPU kernels use (OpenMP). OpenMP's own default, every core, collapses on a
// machine where other work runs: its threads wait for each other at every parallel region, and a
// thread that shares its core waits long (measured on 2 busy cores: generation at 240 tokens/s
// on 2 threads against 2,350 on one; docs/PERF.md). So serpent picks the cores that are free.
#pragma once

#include <cstdint>
#include <string>

namespace serpent {

// requested > 0: that many. 0 (auto): OMP_NUM_THREADS when it is set, else the cores that other
// running processes leave free (at least one).
int choose_threads(int64_t requested);

// Sets the count for every later parallel region; returns a description for logs
// ("2 threads (auto: 2 cores, 0 busy)").
std::string use_threads(int64_t requested);

}  // namespace serpent
