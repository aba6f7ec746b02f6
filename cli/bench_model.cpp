// Whole-step and per-op-family benchmarks of a Mamba model (see cli/bench.h).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>

#include "autograd/engine.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "cli/bench.h"
#include "core/creation.h"
#include "dist/comm.h"
#include "dist/grad_buckets.h"
#include "layers/mamba.h"
#include "optim/adamw.h"
#ifdef SERPENT_CUDA
#include "core/cuda/runtime.h"
#endif

namespace serpent {

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Milliseconds per call of fn: CUDA events on a GPU, the host clock on the cpu. Median of
// `reps` after `warmup` untimed calls.
double time_ms(const std::function<void()>& fn, Device device, int64_t reps, int64_t warmup) {
  std::vector<double> t;
  for (int64_t r = 0; r < warmup + reps; ++r) {
    double ms = 0;
    if (device.is_cuda()) {
#ifdef SERPENT_CUDA
      cuda::EventTimer timer(device.index);
      timer.start();
      fn();
      ms = timer.stop();
#endif
    } else {
      auto t0 = std::chrono::steady_clock::now();
      fn();
      ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    if (r >= warmup) t.push_back(ms);
  }
  return median(t);
}

Tensor random_ids(int64_t B, int64_t L, int64_t vocab, Generator& gen, Device device) {
  std::vector<int64_t> ids(size_t(B * L));
  for (auto& t : ids) t = std::min<int64_t>(vocab - 1, int64_t(gen.uniform() * double(vocab)));
  return from_vector(ids, {B, L}).to(device);
}

// Forward + backward of fn's output against a random upstream gradient, for a family's timing.
void run_with_backward(const std::function<Tensor()>& fn, const Tensor& upstream) {
  Tensor out = fn();
  autograd::backward(out, upstream);
}

struct Family {
  const char* name;
  double ms_per_call;
  int64_t calls_per_step;
};

// Times each op family fwd + bwd at the workload's shapes; returns ms per step for each.
std::vector<Family> op_breakdown(const ModelBench& b, const MambaLM& model, AdamW& opt, int64_t reps) {
  const MambaConfig& c = model.config();
  const int64_t B = b.batch, L = b.seq_len, M = B * L, D = c.d_model, E = c.d_inner(), N = c.d_state;
  const int64_t R = c.resolved_dt_rank();
  const DType act = b.compute_dtype;
  const Device dev = b.device;
  Generator gen(b.seed + 1);
  auto leaf = [&](const Shape& s, DType dt, double lo = -1, double hi = 1) {
    return uniform(s, lo, hi, gen, dt, dev).set_requires_grad(true);
  };
  const auto& mixer = model.backbone().layers[0]->mixer;
  const auto& norm = model.backbone().layers[0]->norm;
  std::vector<Family> out;
  auto family = [&](const char* name, int64_t calls, const std::function<void()>& fn) {
    out.push_back({name, time_ms(fn, dev, reps, 2), calls});
  };

  Tensor ids = random_ids(B, L, c.vocab_size, gen, dev);
  Tensor up_emb = uniform({B, L, D}, -1, 1, gen, model.backbone().embeddings.weight.dtype(), dev);
  family("embedding", 1, [&] { run_with_backward([&] { return model.backbone().embeddings.forward(ids); }, up_emb); });

  Tensor h = leaf({M, D}, act), res = leaf({M, D}, DType::f32);
  Tensor up_norm = uniform({M, D}, -1, 1, gen, act, dev);
  family("add_rms_norm", c.n_layer + 1,
         [&] { run_with_backward([&] { return norm.forward(h, res, act).first; }, up_norm); });

  Tensor x0 = leaf({M, D}, act), u = leaf({M, E}, act), dtl = leaf({M, R}, act), y = leaf({M, E}, act);
  Tensor up_e = uniform({M, E}, -1, 1, gen, act, dev), up_n = uniform({M, N}, -1, 1, gen, act, dev);
  Tensor up_r = uniform({M, R}, -1, 1, gen, act, dev), up_d = uniform({M, D}, -1, 1, gen, act, dev);
  family("matmuls (4 projections)", c.n_layer, [&] {
    // As the mixer runs them (layers/mamba.cpp): the split projections through linear_rows.
    const std::vector<Tensor> xz = linear_rows(x0, mixer.in_proj.weight, {E, E});
    autograd::backward(xz, {up_e, up_e});
    const std::vector<Tensor> dbc = linear_rows(u, mixer.x_proj.weight, {R, N, N});
    autograd::backward(dbc, {up_r, up_n, up_n});
    run_with_backward([&] { return linear(dtl, mixer.dt_proj.weight); }, up_e);
    run_with_backward([&] { return linear(y, mixer.out_proj.weight); }, up_d);
  });

  Tensor xc = leaf({B, L, E}, act);
  Tensor up_c = uniform({B, L, E}, -1, 1, gen, act, dev);
  family("causal_conv1d", c.n_layer, [&] { run_with_backward([&] { return mixer.conv1d.forward(xc, true); }, up_c); });

  Tensor su = leaf({B, L, E}, act), sdelta = leaf({B, L, E}, act, -3, 1), sz = leaf({B, L, E}, act, -2, 2);
  Tensor sB = leaf({B, L, N}, act), sC = leaf({B, L, N}, act);
  Tensor A = scale(exp(mixer.A_log.detach()), -1.0);
  family("selective_scan", c.n_layer, [&] {
    run_with_backward([&] { return selective_scan(su, sdelta, A, sB, sC, mixer.D, sz, mixer.dt_proj.bias, true).y; },
                      up_c);
  });

  Tensor hf = leaf({M, D}, act);
  Tensor targets = random_ids(M, 1, c.vocab_size, gen, dev).view({M});
  family("lm_head + cross_entropy", 1, [&] {
    Tensor loss = linear_cross_entropy(hf, model.backbone().embeddings.weight, targets);
    autograd::backward(loss);
  });

  const std::vector<Tensor> params = model.parameters();
  family("grad norm + AdamW", 1, [&] { opt.step(1e-9, grad_norm_device(params), 1.0); });
  return out;
}

// On a GPU: MFU at `flops_per_token` and the caching allocator's peak since the last reset.
void report_device(const ModelBench& b, double tokens_per_s, double flops_per_token) {
  if (!b.device.is_cuda()) return;
  const double mfu = flops_per_token * tokens_per_s / kPeakBf16Flops;
  std::printf("MFU: %.1f%% of %.0f TFLOP/s (matmul FLOPs %.1f MFLOP/token)\n", 100 * mfu, kPeakBf16Flops / 1e12,
              flops_per_token / 1e6);
#ifdef SERPENT_CUDA
  const cuda::MemoryStats m = cuda::CachingAllocator::get().stats(b.device.index);
  std::printf("peak memory: %.2f GiB in tensors, %.2f GiB reserved by the caching allocator, %lld cudaMalloc calls\n",
              double(m.peak_allocated) / (1 << 30), double(m.peak_reserved) / (1 << 30), (long long)m.device_mallocs);
#endif
}

}  // namespace

int bench_model(const ModelBench& b) {
  const int64_t B = b.batch, L = b.seq_len;
  SERPENT_CHECK(B > 0 && L > 0 && b.steps > 0 && b.warmup >= 0, "bench: batch, seq-len and steps must be positive");
  SERPENT_CHECK(b.device.is_cuda() || b.compute_dtype != DType::bf16, "bench: bf16 mixed precision needs a GPU");
  Generator gen(uint64_t(b.seed));
  MambaLM model(b.model, gen);
  model.to(b.device);
  model.set_compute_dtype(b.compute_dtype);
  model.set_recompute_blocks(b.recompute_blocks);
  AdamWConfig adamw;
  adamw.bf16_moments = b.bf16_moments;
  AdamW opt(model.named_parameters(), adamw);
  const std::vector<Tensor> params = model.parameters();
  Tensor x = random_ids(B, L, b.model.vocab_size, gen, b.device);
  Tensor y = random_ids(B, L, b.model.vocab_size, gen, b.device);

  std::printf("bench: %s, %lld parameters, batch %lld x %lld, %s, %s%s%s%s\n", b.model.summary().c_str(),
              (long long)model.num_parameters(), (long long)B, (long long)L, b.device.str().c_str(),
              dtype_name(b.compute_dtype),
              b.device.is_cpu() ? str_cat(", ", omp_get_max_threads(), " threads").c_str() : "",
              b.recompute_blocks ? ", recompute full" : "", b.bf16_moments ? ", bf16 moments" : "");
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<GradBuckets> buckets;
  if (!b.dist.empty()) {
    const DistEnv env = dist_env_from_process();
    comm = make_communicator(env, b.device, {b.dist, 600});
    buckets = std::make_unique<GradBuckets>(model.named_parameters(), *comm, GradBucketOptions{b.bucket_mb});
    std::printf("gradients: %zu buckets of at most %g MB, reduced by the %s communicator, world size %d\n",
                buckets->buckets().size(), b.bucket_mb, comm->backend(), comm->world_size());
  }
  Tensor last_loss;
  if (b.forward_only) {
    // What serpent eval runs per batch (infer/evaluate.cpp): the mean loss, no graph.
    auto forward = [&] {
      autograd::NoGradGuard no_grad;
      last_loss = model.loss(x, y);
    };
#ifdef SERPENT_CUDA
    if (b.device.is_cuda()) {
      forward();
      cuda::CachingAllocator::get().reset_peak(b.device.index);
    }
#endif
    const double ms = time_ms(forward, b.device, b.steps, b.warmup);
    const double tokens_per_s = double(B * L) / (ms / 1e3);
    std::printf("forward (eval): median %.2f ms, %.0f tokens/s (loss %.4f)\n", ms, tokens_per_s, last_loss.item());
    report_device(b, tokens_per_s, b.model.training_flops_per_token() / 3);
    return 0;
  }
  // One training step: forward, backward (with the buckets: reducing them as it goes), global
  // norm, clipped AdamW update. Nothing here waits for the GPU; the timer's stop does.
  auto step = [&] {
    if (buckets) {
      buckets->zero_grad();
      buckets->set_sync(true);
    } else {
      model.zero_grad();
    }
    last_loss = model.loss(x, y);
    autograd::backward(last_loss);
    if (buckets) buckets->finish();
    opt.step(1e-4, grad_norm_device(params), 1.0);
  };
#ifdef SERPENT_CUDA
  if (b.device.is_cuda()) {
    step();  // first allocations, cuBLAS heuristics
    cuda::CachingAllocator::get().reset_peak(b.device.index);
  }
#endif
  const double ms = time_ms(step, b.device, b.steps, b.warmup);
  const double tokens_per_s = double(B * L) / (ms / 1e3);
  std::printf("train step: median %.2f ms, %.0f tokens/s (loss %.4f)\n", ms, tokens_per_s, last_loss.item());
  report_device(b, tokens_per_s, b.model.training_flops_per_token());
  if (b.breakdown && b.device.is_cuda()) {
    std::printf("time per op family (forward + backward at this workload's shapes, x calls per step):\n");
    double total = 0;
    for (const Family& f : op_breakdown(b, model, opt, std::max<int64_t>(3, b.steps / 2))) {
      const double per_step = f.ms_per_call * double(f.calls_per_step);
      total += per_step;
      std::printf("  %-26s %8.3f ms x %3lld = %8.2f ms (%4.1f%%)\n", f.name, f.ms_per_call, (long long)f.calls_per_step,
                  per_step, 100 * per_step / ms);
    }
    std::printf("  %-26s %30.2f ms (%4.1f%%)\n", "sum of families", total, 100 * total / ms);
  }
  return 0;
}

}  // namespace serpent
