// serpent bench: forward+backward throughput of a Mamba model on random tokens.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "autograd/ops.h"
#include "core/creation.h"
#include "layers/mamba.h"
#include "train/args.h"

namespace serpent {

int cmd_bench(const Args& args) {
  ArgParser p("bench", "Times forward + backward of a Mamba language model on random tokens and reports tokens/s.");
  p.option("device", "DEV", "cpu or cuda:N", "cpu")
      .option("d-model", "N", "model width", "256")
      .option("n-layer", "N", "number of layers", "4")
      .option("vocab", "N", "vocabulary size", "256")
      .option("batch", "N", "sequences per step", "8")
      .option("seq-len", "N", "tokens per sequence", "256")
      .option("steps", "N", "timed steps", "5")
      .option("warmup", "N", "untimed steps first", "1")
      .option("seed", "N", "random seed", "0");
  if (!p.parse(args)) return 0;
  MambaConfig cfg;
  cfg.d_model = p.get_int("d-model");
  cfg.n_layer = p.get_int("n-layer");
  cfg.vocab_size = p.get_int("vocab");
  const int64_t B = p.get_int("batch"), L = p.get_int("seq-len"), steps = p.get_int("steps");
  const int64_t warmup = p.get_int("warmup");
  SERPENT_CHECK(B > 0 && L > 0 && steps > 0 && warmup >= 0, "bench: batch, seq-len and steps must be positive");
  const Device device = Device::parse(p.get("device"));
  SERPENT_CHECK(device.is_cpu(), "bench: the CUDA benchmark needs the CUDA training path");

  Generator gen(uint64_t(p.get_int("seed")));
  MambaLM model(cfg, gen);
  std::vector<int64_t> ids(size_t(B * (L + 1)));
  for (auto& t : ids) t = int64_t(gen.uniform() * double(cfg.vocab_size)) % cfg.vocab_size;
  Tensor all = from_vector(ids, {B, L + 1});
  std::vector<int64_t> in(size_t(B * L)), tgt(size_t(B * L));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t) {
      in[size_t(b * L + t)] = ids[size_t(b * (L + 1) + t)];
      tgt[size_t(b * L + t)] = ids[size_t(b * (L + 1) + t + 1)];
    }
  Tensor x = from_vector(in, {B, L}), y = from_vector(tgt, {B, L});

  std::printf("bench: %s, %lld parameters, batch %lld x %lld, %s, %d threads\n", cfg.summary().c_str(),
              (long long)model.num_parameters(), (long long)B, (long long)L, device.str().c_str(), omp_get_max_threads());
  std::vector<double> times;
  double loss = 0;
  for (int64_t s = 0; s < warmup + steps; ++s) {
    auto t0 = std::chrono::steady_clock::now();
    model.zero_grad();
    Tensor l = model.loss(x, y);
    l.backward();
    loss = l.item();
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s >= warmup) times.push_back(dt);
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  std::printf("forward+backward: median %.4f s/step, %.0f tokens/s (loss %.4f)\n", median, double(B * L) / median,
              loss);
  return 0;
}

}  // namespace serpent
