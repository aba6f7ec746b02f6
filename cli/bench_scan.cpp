// The selective scan alone on a GPU (see cli/bench.h).
#include <algorithm>
#include <cstdio>

#include "autograd/engine.h"
#include "autograd/ops.h"
#include "cli/bench.h"
#include "core/creation.h"
#ifdef SERPENT_CUDA
#include "core/cuda/runtime.h"
#endif

namespace serpent {

// Activations in bf16 and A, D, dt bias in f32, as in mixed-precision training: forward, and
// forward + backward, each timed with CUDA events.
int bench_scan(int64_t B, int64_t E, int64_t L, int64_t N, Device dev, int64_t reps, int64_t warmup, uint64_t seed) {
  SERPENT_CHECK(dev.is_cuda(), "bench scan: needs --device cuda:N");
  SERPENT_CHECK(B > 0 && E > 0 && L > 0 && N > 0 && reps > 0, "bench scan: every size must be positive");
#ifndef SERPENT_CUDA
  (void)warmup, (void)seed;
  fail("bench scan: this build has no CUDA backend");
#else
  Generator gen(seed);
  auto act = [&](const Shape& sh, double lo, double hi) {
    return uniform(sh, lo, hi, gen, DType::bf16, dev).set_requires_grad(true);
  };
  auto param = [&](const Shape& sh, double lo, double hi) {
    return uniform(sh, lo, hi, gen, DType::f32, dev).set_requires_grad(true);
  };
  Tensor u = act({B, L, E}, -1, 1), delta = act({B, L, E}, -3, 1), z = act({B, L, E}, -2, 2);
  Tensor Bm = act({B, L, N}, -1, 1), Cm = act({B, L, N}, -1, 1);
  Tensor A = param({E, N}, -8, -0.5), D = param({E}, -1, 1), bias = param({E}, -4, -1);
  Tensor dout = uniform({B, L, E}, -1, 1, gen, DType::bf16, dev);
  cuda::EventTimer timer(dev.index);
  std::vector<double> fwd, both;
  for (int64_t r = 0; r < warmup + reps; ++r) {
    timer.start();
    ScanOutput o = selective_scan(u, delta, A, Bm, Cm, D, z, bias, true);
    const double f = timer.stop();
    timer.start();
    ScanOutput o2 = selective_scan(u, delta, A, Bm, Cm, D, z, bias, true);
    autograd::backward(o2.y, dout);
    const double fb = timer.stop();
    if (r >= warmup) fwd.push_back(f), both.push_back(fb);
  }
  std::sort(fwd.begin(), fwd.end());
  std::sort(both.begin(), both.end());
  // Bytes the forward must move at least: read u, delta, z (bf16) and B, C, write y.
  const double bytes = 2.0 * double(4 * B * L * E + 2 * B * L * N);
  const double f = fwd[fwd.size() / 2], fb = both[both.size() / 2];
  std::printf("scan B %lld, d_inner %lld, L %lld, N %lld (bf16 activations, f32 A/D/dt bias, softplus, z gate):\n",
              (long long)B, (long long)E, (long long)L, (long long)N);
  std::printf("  forward            median %.3f ms  (%.0f GB/s of the minimum traffic)\n", f, bytes / f / 1e6);
  std::printf("  forward + backward median %.3f ms\n", fb);
  return 0;
#endif
}

}  // namespace serpent
