// serpent bench: forward+backward throughput of a Mamba model on random tokens.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "autograd/ops.h"
#include "core/creation.h"
#include "layers/mamba.h"
#include "train/args.h"
#ifdef SERPENT_CUDA
#include "core/cuda/runtime.h"
#endif

namespace serpent {

namespace {

std::vector<int64_t> parse_shape(const std::string& text, size_t count, const char* what) {
  std::vector<int64_t> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    try {
      out.push_back(std::stoll(text.substr(pos, comma - pos)));
    } catch (const std::exception&) {
      fail("bench: ", what, " expects ", count, " comma-separated integers, got '", text, "'");
    }
    pos = comma + 1;
  }
  SERPENT_CHECK(out.size() == count, "bench: ", what, " expects ", count, " comma-separated integers, got '", text,
                "'");
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The selective scan alone, with the activations in bf16 and A, D, dt bias in f32 (the training
// configuration), timed with CUDA events: forward, and forward + backward.
int bench_scan(const ArgParser& p) {
#ifndef SERPENT_CUDA
  (void)p;
  fail("bench scan: this build has no CUDA backend");
#else
  const std::vector<int64_t> s = parse_shape(p.get("shape"), 4, "--shape B,E,L,N");
  const int64_t B = s[0], E = s[1], L = s[2], N = s[3];
  const Device dev = Device::parse(p.get("device"));
  SERPENT_CHECK(dev.is_cuda(), "bench scan: needs --device cuda:N");
  const int64_t reps = p.get_int("steps"), warmup = p.get_int("warmup");
  Generator gen(uint64_t(p.get_int("seed")));
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
    o2.y.backward(dout);
    const double fb = timer.stop();
    if (r >= warmup) fwd.push_back(f), both.push_back(fb);
  }
  // Bytes the forward must move at least: read u, delta, z (bf16) and B, C, write y.
  const double bytes = 2.0 * (4 * B * L * E + 2 * B * L * N);
  std::printf("scan B %lld, d_inner %lld, L %lld, N %lld (bf16 activations, f32 A/D/dt bias, softplus, z gate):\n",
              (long long)B, (long long)E, (long long)L, (long long)N);
  std::printf("  forward            median %.3f ms  (%.0f GB/s of the minimum traffic)\n", median(fwd),
              bytes / median(fwd) / 1e6);
  std::printf("  forward + backward median %.3f ms\n", median(both));
  return 0;
#endif
}

}  // namespace

int cmd_bench(const Args& args) {
  if (!args.empty() && args[0] == "scan") {
    ArgParser p("bench scan", "Times the selective scan kernel alone on a GPU (forward, forward + backward).");
    p.option("shape", "B,E,L,N", "batch, d_inner, sequence length, d_state", "8,1536,2048,16")
        .option("device", "DEV", "cuda:N", "cuda:0")
        .option("steps", "N", "timed repetitions", "20")
        .option("warmup", "N", "untimed repetitions first", "3")
        .option("seed", "N", "random seed", "0");
    if (!p.parse(Args(args.begin() + 1, args.end()))) return 0;
    return bench_scan(p);
  }
  ArgParser p("bench", "Times forward + backward of a Mamba language model on random tokens and reports tokens/s.\n"
              "`serpent bench scan --help` times the selective scan kernel alone.");
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
  const double m = median(times);
  std::printf("forward+backward: median %.4f s/step, %.0f tokens/s (loss %.4f)\n", m, double(B * L) / m, loss);
  return 0;
}

}  // namespace serpent
