// The model-op CUDA kernels against the CPU, forward and backward: add_rms_norm, causal_conv1d,
// embedding, linear_cross_entropy, AdamW and the global gradient norm. Every op runs in pure f32
// and in the mixed precision of the op contract (autograd/ops.h: bf16 activations, f32
// parameters, residual stream and reductions). The reference runs in f64 on the host from the very
// values the device sees (each input rounded to its device dtype first); tolerances are relative
// (norm of the difference over the norm of the reference), 1e-5 for f32 results and 1e-2 for bf16
// ones. Inputs are fresh random draws every run (the seed is printed). Without a GPU every test
// here skips visibly.
#include <cmath>
#include <limits>
#include <random>

#include "autograd/engine.h"
#include "helpers.h"
#include "optim/adamw.h"
#ifdef SERPENT_CUDA
#include "core/cuda/runtime.h"
#include "kernels/cuda/index_check.h"
#endif

using namespace serpent;
using namespace serpent::testing;

namespace {

class CudaKernels : public CudaTest {};

double tolerance(DType dt) {
  return dt == DType::bf16 ? 1e-2 : 1e-5;
}

// x as stored in dt, back in f64 on the host: what the reference computes with.
Tensor rounded(const Tensor& x, DType dt) {
  return x.to(dt).to(DType::f64).clone();
}
Tensor host_leaf(const Tensor& x, DType dt) {
  return rounded(x, dt).set_requires_grad(true);
}
Tensor device_leaf(const Tensor& x, DType dt, Device gpu) {
  return x.to(dt).to(gpu).set_requires_grad(true);
}

// A device result: its dtype and device, and its distance from the f64 reference.
void expect_close(const Tensor& got, const Tensor& want, DType dt, double tol, const std::string& what) {
  ASSERT_TRUE(got.defined()) << what << " is undefined";
  EXPECT_EQ(got.dtype(), dt) << what;
  EXPECT_TRUE(got.is_cuda()) << what;
  EXPECT_LE(relative_error(got, want), tol) << what;
}
void expect_close(const Tensor& got, const Tensor& want, DType dt, const std::string& what) {
  expect_close(got, want, dt, tolerance(dt), what);
}

TEST_F(CudaKernels, AddRmsNormParity) {
  Generator gen(seed_);
  // D odd, D not a multiple of the 4-wide packs, one row, many rows.
  for (auto [M, D] : {std::pair<int64_t, int64_t>{1, 3}, {37, 24}, {1000, 768}, {33, 1537}, {5, 2048}}) {
    Tensor h = uniform({M, D}, -2, 2, gen, DType::f64), r = uniform({M, D}, -2, 2, gen, DType::f64);
    Tensor w = uniform({D}, 0.5, 1.5, gen, DType::f64);
    Tensor dn = uniform({M, D}, -1, 1, gen, DType::f64), dr = uniform({M, D}, -1, 1, gen, DType::f64);
    for (DType h_dt : {DType::f32, DType::bf16})
      for (DType out_dt : {DType::f32, DType::bf16})
        for (bool with_residual : {false, true}) {
          SCOPED_TRACE(str_cat("M ", M, " D ", D, " h ", dtype_name(h_dt), " out ", dtype_name(out_dt), " residual ",
                               with_residual));
          Tensor hg = device_leaf(h, h_dt, gpu_), wg = device_leaf(w, DType::f32, gpu_);
          Tensor rg = with_residual ? device_leaf(r, DType::f32, gpu_) : Tensor();
          auto [ng, rog] = add_rms_norm(hg, rg, wg, 1e-5, out_dt);
          autograd::backward({ng, rog}, {dn.to(out_dt).to(gpu_), dr.to(DType::f32).to(gpu_)});

          Tensor hc = host_leaf(h, h_dt), wc = host_leaf(w, DType::f32);
          Tensor rc = with_residual ? host_leaf(r, DType::f32) : Tensor();
          auto [nc, roc] = add_rms_norm(hc, rc, wc, 1e-5);
          autograd::backward({nc, roc}, {rounded(dn, out_dt), rounded(dr, DType::f32)});

          expect_close(ng, nc, out_dt, "normed");
          expect_close(rog, roc, DType::f32, "residual_out");
          expect_close(hg.grad(), hc.grad(), h_dt, "gradient of h");
          if (with_residual) expect_close(rg.grad(), rc.grad(), DType::f32, "gradient of the residual");
          expect_close(wg.grad(), wc.grad(), DType::f32, "gradient of the weight");
        }
  }
}

TEST_F(CudaKernels, AddRmsNormWeightGradientIsDeterministic) {
  Generator gen(seed_);
  Tensor h = uniform({4099, 768}, -2, 2, gen, DType::bf16, gpu_).set_requires_grad(true);
  Tensor w = uniform({768}, 0.5, 1.5, gen, DType::f32, gpu_).set_requires_grad(true);
  Tensor dn = uniform({4099, 768}, -1, 1, gen, DType::bf16, gpu_);
  std::vector<std::vector<float>> runs;
  for (int i = 0; i < 3; ++i) {
    w.zero_grad();
    auto [n, res] = add_rms_norm(h, Tensor(), w, 1e-5, DType::bf16);
    autograd::backward({n}, {dn});
    runs.push_back(w.grad().to_vector<float>());
  }
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0], runs[2]);
}

TEST_F(CudaKernels, CausalConv1dParity) {
  Generator gen(seed_);
  struct Shape3 {
    int64_t B, L, E;
  };
  // L = 1, L shorter than a width, L not a multiple of the 64-step chunk, E = 24 and 1536.
  for (Shape3 s : {Shape3{2, 1, 24}, {2, 3, 24}, {2, 37, 24}, {3, 130, 40}, {1, 1000, 1536}})
    for (int64_t W = 1; W <= 4; ++W) {
      Tensor x = uniform({s.B, s.L, s.E}, -2, 2, gen, DType::f64), w = uniform({s.E, W}, -1, 1, gen, DType::f64);
      Tensor b = uniform({s.E}, -1, 1, gen, DType::f64), dout = uniform({s.B, s.L, s.E}, -1, 1, gen, DType::f64);
      for (DType dt : {DType::f32, DType::bf16})
        for (bool with_bias : {false, true})
          for (bool act : {false, true}) {
            SCOPED_TRACE(str_cat("B ", s.B, " L ", s.L, " E ", s.E, " W ", W, " ", dtype_name(dt), " bias ", with_bias,
                                 " silu ", act));
            Tensor xg = device_leaf(x, dt, gpu_), wg = device_leaf(w, DType::f32, gpu_);
            Tensor bg = with_bias ? device_leaf(b, DType::f32, gpu_) : Tensor();
            Tensor og = causal_conv1d(xg, wg, bg, act);
            autograd::backward(og, dout.to(dt).to(gpu_));

            Tensor xc = host_leaf(x, dt), wc = host_leaf(w, DType::f32);
            Tensor bc = with_bias ? host_leaf(b, DType::f32) : Tensor();
            Tensor oc = causal_conv1d(xc, wc, bc, act);
            autograd::backward(oc, rounded(dout, dt));

            expect_close(og, oc, dt, "output");
            expect_close(xg.grad(), xc.grad(), dt, "gradient of x");
            expect_close(wg.grad(), wc.grad(), DType::f32, "gradient of the weight");
            if (with_bias) expect_close(bg.grad(), bc.grad(), DType::f32, "gradient of the bias");
          }
    }
}

TEST_F(CudaKernels, CausalConv1dWeightGradientIsDeterministic) {
  Generator gen(seed_);
  Tensor x = uniform({4, 777, 1536}, -2, 2, gen, DType::bf16, gpu_);
  Tensor w = uniform({1536, 4}, -1, 1, gen, DType::f32, gpu_).set_requires_grad(true);
  Tensor b = uniform({1536}, -1, 1, gen, DType::f32, gpu_).set_requires_grad(true);
  Tensor dout = uniform({4, 777, 1536}, -1, 1, gen, DType::bf16, gpu_);
  std::vector<std::vector<float>> dw, db;
  for (int i = 0; i < 3; ++i) {
    w.zero_grad();
    b.zero_grad();
    autograd::backward(causal_conv1d(x, w, b, true), dout);
    dw.push_back(w.grad().to_vector<float>());
    db.push_back(b.grad().to_vector<float>());
  }
  EXPECT_EQ(dw[0], dw[1]);
  EXPECT_EQ(dw[0], dw[2]);
  EXPECT_EQ(db[0], db[1]);
  EXPECT_EQ(db[0], db[2]);
}

TEST_F(CudaKernels, EmbeddingParity) {
  Generator gen(seed_);
  std::mt19937_64 rng(seed_);
  struct Case {
    int64_t V, D, M;
  };
  // The padded GPT-NeoX vocabulary, small odd vocabularies with many repeated ids, D odd, one id.
  for (Case c : {Case{50280, 64, 1000}, {37, 77, 37}, {11, 24, 4096}, {5, 768, 1}}) {
    Tensor w = randn({c.V, c.D}, gen, DType::f64);
    Tensor dout = uniform({c.M, c.D}, -1, 1, gen, DType::f64);
    std::vector<int64_t> ids(static_cast<size_t>(c.M));
    for (auto& id : ids) id = int64_t(rng() % uint64_t(c.V));
    for (DType dt : {DType::f32, DType::bf16})
      for (DType id_dt : {DType::i32, DType::i64})
        for (bool ids_on_gpu : {false, true}) {
          SCOPED_TRACE(str_cat("V ", c.V, " D ", c.D, " M ", c.M, " ", dtype_name(dt), " ids ", dtype_name(id_dt),
                               ids_on_gpu ? " on the GPU" : " on the cpu"));
          Tensor id_host = from_vector(ids, {c.M}, id_dt);
          Tensor wg = device_leaf(w, dt, gpu_);
          Tensor og = embedding(wg, ids_on_gpu ? id_host.to(gpu_) : id_host);
          autograd::backward(og, dout.to(dt).to(gpu_));
          Tensor wc = host_leaf(w, dt);
          Tensor oc = embedding(wc, id_host);
          autograd::backward(oc, rounded(dout, dt));
          // A gather copies: exact.
          EXPECT_EQ(og.to_vector<double>(), oc.to_vector<double>());
          expect_close(wg.grad(), wc.grad(), dt, "gradient of the weight");
          if (dt == DType::f32) {
            // The sorted segment sums add each row's gradients in position order, like the cpu loop.
            Tensor w32 = w.to(DType::f32).set_requires_grad(true);
            autograd::backward(embedding(w32, id_host), dout.to(DType::f32));
            EXPECT_EQ(wg.grad().to_vector<float>(), w32.grad().to_vector<float>());
          }
        }
  }
}

#ifdef SERPENT_CUDA
TEST_F(CudaKernels, EmbeddingReportsBadIdsFromTheDevice) {
  Generator gen(seed_);
  Tensor w = randn({10, 4}, gen, DType::f32, gpu_);
  // Ids from the host are checked before the upload: an immediate error.
  expect_error([&] { embedding(w, from_vector<int64_t>({1, 10}, {2})); }, {"token id 10", "position 1", "[0, 10)"});
  // Ids already on the device: the bad row is NaN and the report arrives at the next check.
  Tensor out = embedding(w, from_vector<int64_t>({3, -2, 4}, {3}).to(gpu_));
  std::vector<float> o = out.to_vector<float>(), wv = w.to_vector<float>();
  for (int d = 0; d < 4; ++d) {
    EXPECT_EQ(o[size_t(d)], wv[size_t(3 * 4 + d)]);
    EXPECT_TRUE(std::isnan(o[size_t(4 + d)]));
    EXPECT_EQ(o[size_t(8 + d)], wv[size_t(4 * 4 + d)]);
  }
  expect_error([&] { cuda::check_indices(0); }, {"embedding", "token id -2", "position 1", "[0, 10)", "cuda:0"});
  cuda::check_indices(0);  // reported once, then clear
  // The lazy path: the next call on the device raises what an earlier launch found.
  embedding(w, from_vector<int32_t>({0, 12}, {2}).to(gpu_));
  cuda::synchronize(0);
  expect_error([&] { embedding(w, from_vector<int32_t>({0}, {1}).to(gpu_)); }, {"token id 12", "position 1"});
  EXPECT_EQ(embedding(w, from_vector<int32_t>({7}, {1}).to(gpu_)).to_vector<float>(),
            std::vector<float>(wv.begin() + 28, wv.begin() + 32));
}
#endif

struct LceCase {
  int64_t M, D, V, chunk;
};

TEST_F(CudaKernels, LinearCrossEntropyParity) {
  Generator gen(seed_);
  std::mt19937_64 rng(seed_);
  // The padded GPT-NeoX vocabulary in one chunk and in chunks of 256 rows (1000 = 3 x 256 + 232),
  // small odd vocabularies with uneven chunks, a single row.
  for (LceCase c :
       {LceCase{1000, 24, 50280, 0}, {1000, 24, 50280, 256}, {37, 65, 37, 5}, {300, 64, 1001, 7}, {1, 8, 11, 0}}) {
    const double bound = 3.0 / std::sqrt(double(c.D));  // logits of order 1
    Tensor h = uniform({c.M, c.D}, -1, 1, gen, DType::f64), w = uniform({c.V, c.D}, -bound, bound, gen, DType::f64);
    std::vector<int64_t> t(static_cast<size_t>(c.M));
    for (auto& v : t) v = rng() % 10 == 0 ? -100 : int64_t(rng() % uint64_t(c.V));
    if (c.M == 1) t[0] = int64_t(rng() % uint64_t(c.V));
    Tensor targets = from_vector(t, {c.M});
    for (DType dt : {DType::f32, DType::bf16}) {
      Tensor hc = host_leaf(h, dt), wc = host_leaf(w, DType::f32);
      Tensor lc = linear_cross_entropy(hc, wc, targets, -100);
      autograd::backward(lc, full({}, 0.7, DType::f64));
      for (bool targets_on_gpu : {false, true}) {
        SCOPED_TRACE(str_cat("M ", c.M, " D ", c.D, " V ", c.V, " chunk ", c.chunk, " ", dtype_name(dt),
                             targets_on_gpu ? " targets on the GPU" : " targets on the cpu"));
        Tensor hg = device_leaf(h, dt, gpu_), wg = device_leaf(w, DType::f32, gpu_);
        Tensor tg = targets_on_gpu ? targets.to(DType::i32).to(gpu_) : targets;
        Tensor lg = linear_cross_entropy(hg, wg, tg, -100, c.chunk);
        ASSERT_EQ(lg.dtype(), DType::f32);
        autograd::backward(lg, full({}, 0.7, DType::f32, gpu_));
        EXPECT_LE(std::abs(lg.item() - lc.item()), tolerance(dt) * std::abs(lc.item()));
        expect_close(hg.grad(), hc.grad(), dt, "gradient of h");
        // f32 accumulation of bf16 products: the operands' precision bounds it.
        expect_close(wg.grad(), wc.grad(), DType::f32, tolerance(dt), "gradient of the weight");
      }
    }
  }
}

TEST_F(CudaKernels, LinearCrossEntropyUsesTheWeightsBf16Copy) {
  Generator gen(seed_);
  Tensor h = uniform({64, 32}, -1, 1, gen, DType::bf16, gpu_);
  Tensor w = uniform({97, 32}, -0.5, 0.5, gen, DType::f32, gpu_).set_requires_grad(true);
  Tensor targets = from_vector<int64_t>(std::vector<int64_t>(64, 5), {64});
  const double plain = linear_cross_entropy(h, w, targets).item();
  // A copy that differs from the weight: the product must read it, not convert the weight.
  w.impl().bf16_copy = zeros({97, 32}, DType::bf16, gpu_).impl_ptr();
  const double with_copy = linear_cross_entropy(h, w, targets).item();
  EXPECT_NEAR(with_copy, std::log(97.0), 1e-5);  // zero logits: uniform softmax
  EXPECT_GT(std::abs(plain - with_copy), 1e-3);
}

#ifdef SERPENT_CUDA
TEST_F(CudaKernels, LinearCrossEntropyEdgeCasesAndBadTargets) {
  Generator gen(seed_);
  Tensor h = uniform({6, 16}, -1, 1, gen, DType::bf16, gpu_).set_requires_grad(true);
  Tensor w = uniform({13, 16}, -1, 1, gen, DType::f32, gpu_).set_requires_grad(true);
  // All targets ignored: NaN loss and zero gradients, as on the cpu.
  Tensor loss = linear_cross_entropy(h, w, full({6}, -100, DType::i64, gpu_));
  EXPECT_TRUE(std::isnan(loss.item()));
  autograd::backward(loss);
  for (double g : h.grad().to_vector<double>()) EXPECT_EQ(g, 0.0);
  for (double g : w.grad().to_vector<double>()) EXPECT_EQ(g, 0.0);
  // A bad target from the host fails at once; one on the device makes the loss NaN and is reported.
  expect_error(
      [&] {
        linear_cross_entropy(h, w, from_vector<int64_t>({0, 1, 2, 13, 4, 5}, {6}));
      },
      {"linear_cross_entropy", "target 13", "row 3", "[0, 13)"});
  Tensor bad = linear_cross_entropy(h, w, from_vector<int64_t>({0, 1, -7, 3, 4, 5}, {6}).to(gpu_), -100, 4);
  EXPECT_TRUE(std::isnan(bad.item()));
  expect_error([&] { cuda::check_indices(0); },
               {"linear_cross_entropy", "target -7", "row 2", "[0, 13)", "ignore index -100"});
}
#endif

TEST_F(CudaKernels, MixedPrecisionContractErrors) {
  Generator gen(seed_);
  Tensor x = uniform({2, 5, 8}, -1, 1, gen, DType::bf16, gpu_);
  expect_error(
      [&] {
        causal_conv1d(x, zeros({8, 4}, DType::bf16, gpu_), Tensor(), true);
      },
      {"causal_conv1d", "weight", "bf16[8, 4]", "f32"});
  expect_error(
      [&] {
        causal_conv1d(x, zeros({8, 5}, DType::f32, gpu_), Tensor(), true);
      },
      {"causal_conv1d", "widths 1 to 4", "[8, 5]"});
  expect_error(
      [&] {
        add_rms_norm(x, zeros({2, 5, 8}, DType::bf16, gpu_), ones({8}, DType::f32, gpu_), 1e-5);
      },
      {"add_rms_norm", "residual", "bf16[2, 5, 8]", "f32"});
  expect_error([&] { add_rms_norm(x, Tensor(), ones({8}, DType::f32, gpu_), 1e-5, DType::f64); },
               {"add_rms_norm", "output dtype", "f64"});
  expect_error(
      [&] {
        linear_cross_entropy(zeros({3, 8}, DType::bf16, gpu_), zeros({5, 8}, DType::bf16, gpu_),
                             zeros({3}, DType::i64));
      },
      {"linear_cross_entropy", "weight must be f32", "bf16[5, 8]"});
}

std::vector<Tensor> param_tensors(const NamedTensors& params) {
  std::vector<Tensor> out;
  for (const auto& [name, p] : params) out.push_back(p);
  return out;
}

TEST_F(CudaKernels, AdamWMatchesTheCpuWithClippingAndSkips) {
  Generator gen(seed_);
  // Every weight-decay group, a large matrix (many blocks), a 3-D conv weight, a one-element
  // parameter, and more tensors than one launch's table holds (36).
  std::vector<std::pair<std::string, Shape>> specs = {
      {"backbone.embeddings.weight", {50280, 8}},   {"layers.0.mixer.x_proj.weight", {37, 24}},
      {"layers.0.mixer.conv1d.weight", {24, 1, 4}}, {"layers.0.mixer.conv1d.bias", {24}},
      {"layers.0.mixer.A_log", {24, 16}},           {"layers.0.mixer.D", {1}}};
  for (int i = 0; i < 40; ++i) specs.push_back({str_cat("layers.", i + 1, ".mixer.w"), {3 + i, 5}});
  NamedTensors cpu, gpu;
  for (const auto& [name, shape] : specs) {
    Tensor v = randn(shape, gen, DType::f32);
    cpu.emplace_back(name, v.clone().set_requires_grad(true));
    gpu.emplace_back(name, v.to(gpu_).set_requires_grad(true));
  }
  AdamW opt_c(cpu, AdamWConfig{}), opt_g(gpu, AdamWConfig{});
  for (const auto& [name, p] : gpu) {
    ASSERT_EQ(bool(p.impl().bf16_copy), p.dim() >= 2) << name;
    if (p.dim() >= 2) {
      EXPECT_EQ(Tensor(p.impl().bf16_copy).to_vector<double>(), p.to(DType::bf16).to_vector<double>());
    }
  }
  const double lr = 3e-3, max_norm = 1.0;
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  // Per step: gradient size (0.001: below max_norm, no clipping), and a poisoned value (NaN, inf).
  const std::vector<std::pair<double, float>> plan = {{1e-3, 0}, {1.0, 0}, {0.1, nan}, {3.0, 0}, {0.5, inf}, {2.0, 0}};
  for (size_t step = 0; step < plan.size(); ++step) {
    SCOPED_TRACE(str_cat("step ", step));
    for (size_t i = 0; i < cpu.size(); ++i) {
      // The last parameter has no gradient on odd steps: it must be left alone.
      if (i + 1 == cpu.size() && step % 2 == 1) {
        cpu[i].second.zero_grad();
        gpu[i].second.zero_grad();
        continue;
      }
      Tensor g = randn(cpu[i].second.shape(), gen, DType::f32, Device::cpu(), 0.0, plan[step].first);
      if (plan[step].second != 0 && i == 3) g.data<float>()[5] = plan[step].second;
      cpu[i].second.impl().grad = g.impl_ptr();
      gpu[i].second.impl().grad = g.to(gpu_).impl_ptr();
    }
    Tensor norm_c = grad_norm_device(param_tensors(cpu)), norm_g = grad_norm_device(param_tensors(gpu));
    ASSERT_TRUE(norm_g.is_cuda());
    if (plan[step].second == 0) {
      EXPECT_LE(std::abs(norm_g.item() - norm_c.item()), 1e-5 * norm_c.item());
      EXPECT_EQ(norm_g.item(), grad_norm_device(param_tensors(gpu)).item());  // deterministic
    } else {
      EXPECT_FALSE(std::isfinite(norm_g.item()));
    }
    std::vector<std::vector<float>> before;
    for (const auto& [name, p] : gpu) before.push_back(p.to_vector<float>());
    opt_c.step(lr, norm_c, max_norm);
    opt_g.step(lr, norm_g, max_norm);
    EXPECT_EQ(opt_g.steps(), opt_c.steps());
    if (plan[step].second != 0) {
      for (size_t i = 0; i < gpu.size(); ++i) EXPECT_EQ(gpu[i].second.to_vector<float>(), before[i]) << gpu[i].first;
    }
  }
  EXPECT_EQ(opt_g.steps(), 4);
  // The host-scale entry point as well.
  opt_c.step(lr, 0.25);
  opt_g.step(lr, 0.25);
  for (size_t i = 0; i < cpu.size(); ++i) {
    SCOPED_TRACE(cpu[i].first);
    expect_close(gpu[i].second, cpu[i].second, DType::f32, "parameter");
    const Tensor& p = gpu[i].second;
    if (p.dim() >= 2) {
      EXPECT_EQ(Tensor(p.impl().bf16_copy).to_vector<double>(), p.to(DType::bf16).to_vector<double>());
    }
  }
  NamedTensors state_c = opt_c.state(), state_g = opt_g.state();
  for (size_t i = 0; i < state_c.size(); ++i)
    expect_close(state_g[i].second, state_c[i].second, DType::f32, state_g[i].first);
}

TEST_F(CudaKernels, GradNormParity) {
  Generator gen(seed_);
  // A tensor of many blocks, many small ones (more than one launch's table of 120), odd sizes.
  std::vector<Tensor> cpu, gpu;
  std::vector<Shape> shapes = {{3000017}, {1}, {50280, 8}};
  for (int i = 0; i < 150; ++i) shapes.push_back({i + 1, 3});
  for (const Shape& s : shapes) {
    Tensor p = zeros(s), q = zeros(s, DType::f32, gpu_);
    Tensor g = randn(s, gen, DType::f32);
    p.impl().grad = g.impl_ptr();
    q.impl().grad = g.to(gpu_).impl_ptr();
    cpu.push_back(p);
    gpu.push_back(q);
  }
  Tensor n = grad_norm_device(gpu);
  EXPECT_EQ(n.dtype(), DType::f32);
  EXPECT_EQ(n.shape(), Shape{});
  EXPECT_LE(std::abs(n.item() - grad_norm(cpu)), 1e-5 * grad_norm(cpu));
  EXPECT_EQ(n.item(), grad_norm_device(gpu).item());
  EXPECT_EQ(grad_norm_device(std::vector<Tensor>{zeros({2}, DType::f32, gpu_)}).item(), 0.0);  // no gradients
}

}  // namespace
