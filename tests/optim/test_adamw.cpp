// AdamW: the first update on the cpu against the formula worked by hand, and the API the GPU path
// shares (clipping through a norm tensor, the non-finite skip, grad_norm_device); then the CUDA
// kernels (kernels/cuda/adamw.cu: the update and the global gradient norm) against the cpu.
#include <cmath>
#include <limits>

#include "optim/adamw.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

// One parameter of each weight-decay group: a matrix (decayed), a vector and A_log (not).
NamedTensors make_params(uint64_t seed) {
  Generator gen(seed);
  return {{"layers.0.mixer.in_proj.weight", uniform({4, 3}, -1, 1, gen).set_requires_grad(true)},
          {"layers.0.mixer.D", uniform({5}, -1, 1, gen).set_requires_grad(true)},
          {"layers.0.mixer.A_log", uniform({2, 3}, -1, 1, gen).set_requires_grad(true)}};
}

// Gradients of magnitude around `size`, the same for the same seed.
void set_grads(const NamedTensors& params, uint64_t seed, double size) {
  Generator gen(seed);
  for (const auto& [name, p] : params) p.impl().grad = uniform(p.shape(), -size, size, gen).impl_ptr();
}

std::vector<Tensor> values(const NamedTensors& params) {
  std::vector<Tensor> out;
  for (const auto& [name, p] : params) out.push_back(p.detach().clone());
  return out;
}

std::vector<Tensor> tensors(const NamedTensors& params) {
  std::vector<Tensor> out;
  for (const auto& [name, p] : params) out.push_back(p);
  return out;
}

TEST(AdamW, FirstStepMatchesTheFormula) {
  // From zero moments, m / (1 - beta1) = g and v / (1 - beta2) = g^2 after one step, so
  // p' = p (1 - lr wd) - lr g / (|g| + eps), with wd = 0 outside the decayed group.
  NamedTensors params = make_params(1);
  set_grads(params, 2, 0.5);
  std::vector<Tensor> before = values(params);
  const double lr = 1e-2, wd = 0.1, eps = 1e-8;
  AdamW opt(params, {0.9, 0.95, eps, wd});
  opt.step(lr);
  EXPECT_EQ(opt.steps(), 1);
  for (size_t i = 0; i < params.size(); ++i) {
    const double decay = i == 0 ? wd : 0.0;  // only the matrix is decayed
    std::vector<double> p0 = before[i].to_vector<double>(), g = params[i].second.grad().to_vector<double>();
    std::vector<double> p1 = params[i].second.to_vector<double>();
    for (size_t k = 0; k < p0.size(); ++k)
      EXPECT_NEAR(p1[k], p0[k] * (1 - lr * decay) - lr * g[k] / (std::abs(g[k]) + eps), 1e-6) << params[i].first;
  }
}

// bf16 moments (optim.state_dtype bf16): after each step the stored m and v are the f32 update
// rounded to the nearest bf16 (within half a bf16 ulp of the value worked here in double; a
// truncating store would miss by up to a whole ulp), and the parameters follow the update that
// starts from the rounded moments.
TEST(AdamW, Bf16MomentsAreRoundedToNearestOncePerStep) {
  NamedTensors params = make_params(11);
  const double lr = 1e-2, wd = 0.1, eps = 1e-8, b1 = 0.9, b2 = 0.95;
  AdamWConfig cfg{b1, b2, eps, wd};
  cfg.bf16_moments = true;
  AdamW opt(params, cfg);
  for (const auto& [name, t] : opt.state()) EXPECT_EQ(t.dtype(), DType::bf16) << name;
  std::vector<std::vector<double>> m(params.size()), v(params.size());
  for (size_t i = 0; i < params.size(); ++i) m[i] = v[i] = std::vector<double>(size_t(params[i].second.numel()), 0.0);
  for (int step = 1; step <= 3; ++step) {
    SCOPED_TRACE(str_cat("step ", step));
    set_grads(params, 20 + uint64_t(step), 0.5);
    std::vector<Tensor> before = values(params);
    opt.step(lr);
    const NamedTensors state = opt.state();
    for (size_t i = 0; i < params.size(); ++i) {
      const double decay = i == 0 ? wd : 0.0;
      std::vector<double> p0 = before[i].to_vector<double>(), g = params[i].second.grad().to_vector<double>();
      std::vector<double> p1 = params[i].second.to_vector<double>();
      std::vector<double> ms = state[2 * i].second.to_vector<double>(),
                          vs = state[2 * i + 1].second.to_vector<double>();
      for (size_t k = 0; k < p0.size(); ++k) {
        const double mk = b1 * m[i][k] + (1 - b1) * g[k], vk = b2 * v[i][k] + (1 - b2) * g[k] * g[k];
        const double expect = p0[k] * (1 - lr * decay) - lr / (1 - std::pow(b1, step)) * mk /
                                                             (std::sqrt(vk) / std::sqrt(1 - std::pow(b2, step)) + eps);
        EXPECT_NEAR(p1[k], expect, 1e-6) << params[i].first;
        // bf16 keeps 8 significant bits: half an ulp is at most 2^-8 of the value (plus f32 noise).
        EXPECT_LE(std::abs(ms[k] - mk), std::ldexp(std::abs(mk), -8) * (1 + 1e-4)) << params[i].first;
        EXPECT_LE(std::abs(vs[k] - vk), std::ldexp(std::abs(vk), -8) * (1 + 1e-4)) << params[i].first;
        m[i][k] = ms[k];  // the next step starts from what was stored
        v[i][k] = vs[k];
      }
    }
  }
}

TEST(AdamW, MomentsCrossBetweenF32AndBf16OnLoad) {
  NamedTensors params = make_params(12);
  set_grads(params, 13, 0.5);
  AdamW f32_opt(params, {});
  f32_opt.step(1e-2);
  const NamedTensors f32_state = f32_opt.state();
  AdamWConfig cfg;
  cfg.bf16_moments = true;
  AdamW bf16_opt(make_params(12), cfg);
  bf16_opt.load_state(f32_state, 1);
  EXPECT_EQ(bf16_opt.steps(), 1);
  const NamedTensors rounded = bf16_opt.state();
  AdamW back(make_params(12), {});
  back.load_state(rounded, 1);
  const NamedTensors widened = back.state();
  for (size_t i = 0; i < f32_state.size(); ++i) {
    EXPECT_EQ(rounded[i].second.dtype(), DType::bf16);
    EXPECT_EQ(widened[i].second.dtype(), DType::f32);
    // f32 -> bf16 rounds (as a bf16 conversion does); bf16 -> f32 is exact.
    EXPECT_EQ(rounded[i].second.to_vector<double>(), f32_state[i].second.to(DType::bf16).to_vector<double>());
    EXPECT_EQ(widened[i].second.to_vector<double>(), rounded[i].second.to_vector<double>()) << rounded[i].first;
  }
}

TEST(AdamW, Bf16MomentsNeedF32Parameters) {
  AdamWConfig cfg;
  cfg.bf16_moments = true;
  const NamedTensors f64 = {{"layers.0.mixer.D", zeros({3}, DType::f64).set_requires_grad(true)}};
  expect_error([&] { AdamW opt(f64, cfg); }, {"AdamW", "layers.0.mixer.D", "f64", "bf16 moments", "f32"});
}

TEST(AdamW, ClippingThroughTheNormTensorMatchesTheHostScale) {
  NamedTensors a = make_params(3), b = make_params(3), c = make_params(3);
  AdamW opt_a(a, {}), opt_b(b, {}), opt_c(c, {});
  // Gradient norms that change from step to step, so that clipping changes the trajectory (Adam
  // is blind to a scale shared by every step).
  for (int step = 0; step < 4; ++step) {
    const double size = 0.5 + step;
    set_grads(a, 10 + step, size);
    set_grads(b, 10 + step, size);
    set_grads(c, 10 + step, size);
    Tensor norm = grad_norm_device(tensors(a));
    EXPECT_EQ(norm.dtype(), DType::f32);
    EXPECT_TRUE(norm.device().is_cpu());
    EXPECT_NEAR(norm.item(), grad_norm(tensors(b)), 1e-6 * grad_norm(tensors(b)));
    ASSERT_GT(norm.item(), 1.0);  // clipping is active
    opt_a.step(1e-2, norm, 1.0);
    opt_b.step(1e-2, clip_scale(grad_norm(tensors(b)), 1.0));
    opt_c.step(1e-2);
  }
  EXPECT_EQ(opt_a.steps(), 4);
  double unclipped_gap = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_LE(relative_error(a[i].second, b[i].second), 1e-6) << a[i].first;
    unclipped_gap = std::max(unclipped_gap, relative_error(c[i].second, b[i].second));
  }
  EXPECT_GT(unclipped_gap, 1e-3);
}

TEST(AdamW, NonFiniteNormSkipsTheWholeStep) {
  NamedTensors params = make_params(4);
  AdamW opt(params, {});
  set_grads(params, 5, 1.0);
  opt.step(1e-2, grad_norm_device(tensors(params)), 1.0);
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    set_grads(params, 6, 1.0);
    params[1].second.grad().data<float>()[2] = float(bad);
    Tensor norm = grad_norm_device(tensors(params));
    EXPECT_FALSE(std::isfinite(norm.item()));
    std::vector<Tensor> before = values(params);
    NamedTensors state_before;
    for (const auto& [name, t] : opt.state()) state_before.emplace_back(name, t.clone());
    opt.step(1e-2, norm, 1.0);
    EXPECT_EQ(opt.steps(), 1);
    for (size_t i = 0; i < params.size(); ++i)
      EXPECT_EQ(params[i].second.to_vector<float>(), before[i].to_vector<float>()) << params[i].first;
    NamedTensors state_after = opt.state();
    for (size_t i = 0; i < state_after.size(); ++i)
      EXPECT_EQ(state_after[i].second.to_vector<float>(), state_before[i].second.to_vector<float>())
          << state_after[i].first;
  }
  set_grads(params, 7, 1.0);
  opt.step(1e-2, grad_norm_device(tensors(params)), 1.0);
  EXPECT_EQ(opt.steps(), 2);
}

TEST(AdamW, NormTensorMustBeOneElementOnTheParametersDevice) {
  NamedTensors params = make_params(8);
  AdamW opt(params, {});
  expect_error([&] { opt.step(1e-2, zeros({2}), 1.0); }, {"AdamW::step", "one-element", "cpu", "f32[2]"});
}

// ---- the CUDA kernels, against the cpu ----
// Inputs are fresh random draws every run (the seed is printed).
class AdamWCuda : public CudaTest {};

TEST_F(AdamWCuda, MatchesTheCpuWithClippingAndSkips) {
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
    Tensor norm_c = grad_norm_device(tensors(cpu)), norm_g = grad_norm_device(tensors(gpu));
    ASSERT_TRUE(norm_g.is_cuda());
    if (plan[step].second == 0) {
      EXPECT_LE(std::abs(norm_g.item() - norm_c.item()), 1e-5 * norm_c.item());
      EXPECT_EQ(norm_g.item(), grad_norm_device(tensors(gpu)).item());  // deterministic
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
    expect_cuda_close(gpu[i].second, cpu[i].second, DType::f32, "parameter");
    const Tensor& p = gpu[i].second;
    if (p.dim() >= 2) {
      EXPECT_EQ(Tensor(p.impl().bf16_copy).to_vector<double>(), p.to(DType::bf16).to_vector<double>());
    }
  }
  NamedTensors state_c = opt_c.state(), state_g = opt_g.state();
  for (size_t i = 0; i < state_c.size(); ++i)
    expect_cuda_close(state_g[i].second, state_c[i].second, DType::f32, state_g[i].first);
}

TEST_F(AdamWCuda, Bf16MomentsMatchTheCpu) {
  Generator gen(seed_);
  AdamWConfig cfg;
  cfg.bf16_moments = true;
  NamedTensors cpu, gpu;
  for (const auto& [name, shape] :
       std::vector<std::pair<std::string, Shape>>{{"layers.0.mixer.in_proj.weight", {301, 37}},
                                                  {"layers.0.mixer.D", {37}},
                                                  {"layers.0.mixer.A_log", {37, 16}}}) {
    Tensor v = randn(shape, gen, DType::f32);
    cpu.emplace_back(name, v.clone().set_requires_grad(true));
    gpu.emplace_back(name, v.to(gpu_).set_requires_grad(true));
  }
  AdamW opt_c(cpu, cfg), opt_g(gpu, cfg);
  for (int step = 0; step < 4; ++step) {
    for (size_t i = 0; i < cpu.size(); ++i) {
      Tensor g = randn(cpu[i].second.shape(), gen, DType::f32, Device::cpu(), 0.0, 0.3);
      cpu[i].second.impl().grad = g.impl_ptr();
      gpu[i].second.impl().grad = g.to(gpu_).impl_ptr();
    }
    opt_c.step(1e-2, grad_norm_device(tensors(cpu)), 1.0);
    opt_g.step(1e-2, grad_norm_device(tensors(gpu)), 1.0);
  }
  for (size_t i = 0; i < cpu.size(); ++i) expect_cuda_close(gpu[i].second, cpu[i].second, DType::f32, cpu[i].first);
  NamedTensors state_c = opt_c.state(), state_g = opt_g.state();
  for (size_t i = 0; i < state_c.size(); ++i) {
    EXPECT_EQ(state_g[i].second.dtype(), DType::bf16) << state_g[i].first;
    expect_cuda_close(state_g[i].second, state_c[i].second, DType::bf16, state_g[i].first);
  }
}

TEST_F(AdamWCuda, GradNormParity) {
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
