// AdamW on the cpu: the first update against the formula worked by hand, and the API the GPU path
// shares (clipping through a norm tensor, the non-finite skip, grad_norm_device). GPU parity is in
// test_cuda_kernels.cpp.
#include <cmath>
#include <limits>

#include "helpers.h"
#include "optim/adamw.h"

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

}  // namespace
