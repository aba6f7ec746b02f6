// CPU kernel properties the gradchecks (which run in f64) do not cover: the float fast path's
// accuracy, f32 against f64 agreement of whole ops, and results independent of the thread count.
#include <omp.h>

#include "autograd/node.h"
#include "helpers.h"
#include "kernels/cpu/fast_exp.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(CpuKernels, FastExpIsWithinTwoUlpOfTheLibrary) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.000731f) {
    const double ref = std::exp(double(x));
    worst = std::max(worst, std::abs(double(cpu::fast_exp(x)) - ref) / ref);
  }
  EXPECT_LE(worst, 2.5e-7);  // two float ulps at most
  EXPECT_EQ(cpu::fast_exp(-100.0f), 0.0f);
  EXPECT_EQ(cpu::fast_exp(0.0f), 1.0f);
}

// Runs fn in f64 and in f32 on the same values; the outputs and input gradients must agree to
// float precision.
void expect_f32_matches_f64(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                            const std::vector<Tensor>& inputs) {
  std::vector<Tensor> d, f;
  for (const Tensor& t : inputs) {
    d.push_back(t.defined() ? t.clone().set_requires_grad(true) : Tensor());
    f.push_back(t.defined() ? t.to(DType::f32).set_requires_grad(true) : Tensor());
  }
  Tensor od = fn(d), of = fn(f);
  EXPECT_LE(relative_error(of, od), 1e-5);
  Generator gen(5);
  Tensor w = randn(od.shape(), gen, DType::f64);
  autograd::backward(sum(mul(od, w)));
  autograd::backward(sum(mul(of, w.to(DType::f32))));
  for (size_t i = 0; i < d.size(); ++i)
    if (d[i].defined()) {
      EXPECT_LE(relative_error(f[i].grad(), d[i].grad()), 1e-4) << "input " << i;
    }
}

TEST(CpuKernels, FloatScanMatchesDouble) {
  Generator gen(21);
  const int64_t B = 2, L = 67, E = 37, N = 16;
  std::vector<Tensor> in = {uniform({B, L, E}, -1, 1, gen, DType::f64), uniform({B, L, E}, -3, 1, gen, DType::f64),
                            uniform({E, N}, -4, -0.5, gen, DType::f64), uniform({B, L, N}, -1, 1, gen, DType::f64),
                            uniform({B, L, N}, -1, 1, gen, DType::f64), uniform({E}, -1, 1, gen, DType::f64),
                            uniform({B, L, E}, -2, 2, gen, DType::f64), uniform({E}, -1, 1, gen, DType::f64)};
  expect_f32_matches_f64(
      [](const std::vector<Tensor>& x) {
        return selective_scan(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], true).y;
      },
      in);
}

TEST(CpuKernels, FloatConvNormAndLossMatchDouble) {
  Generator gen(22);
  expect_f32_matches_f64([](const std::vector<Tensor>& x) { return causal_conv1d(x[0], x[1], x[2], true); },
                         {uniform({3, 41, 29}, -1, 1, gen, DType::f64), uniform({29, 4}, -1, 1, gen, DType::f64),
                          uniform({29}, -1, 1, gen, DType::f64)});
  expect_f32_matches_f64([](const std::vector<Tensor>& x) { return add_rms_norm(x[0], x[1], x[2], 1e-5).first; },
                         {uniform({33, 48}, -1, 1, gen, DType::f64), uniform({33, 48}, -1, 1, gen, DType::f64),
                          uniform({48}, 0.5, 1.5, gen, DType::f64)});
  Tensor targets = from_vector<int64_t>({4, 0, 9, -100, 2}, {5});
  expect_f32_matches_f64([targets](const std::vector<Tensor>& x) { return cross_entropy(x[0], targets); },
                         {uniform({5, 10}, -3, 3, gen, DType::f64)});
}

// Backward of every reducing kernel, once on one thread and once on two: bitwise equal.
TEST(CpuKernels, ResultsDoNotDependOnTheThreadCount) {
  Generator gen(23);
  const int64_t B = 3, L = 150, E = 40, N = 8;
  std::vector<Tensor> base = {
      uniform({B, L, E}, -1, 1, gen), uniform({B, L, E}, -3, 1, gen), uniform({E, N}, -4, -0.5, gen),
      uniform({B, L, N}, -1, 1, gen), uniform({B, L, N}, -1, 1, gen), uniform({E}, -1, 1, gen),
      uniform({B, L, E}, -2, 2, gen), uniform({E}, -1, 1, gen),       uniform({E, 4}, -1, 1, gen)};
  auto grads_with_threads = [&](int threads) {
    omp_set_num_threads(threads);
    std::vector<Tensor> in;
    for (const Tensor& t : base) in.push_back(t.clone().set_requires_grad(true));
    Tensor conv = causal_conv1d(in[0], in[8], in[7], true);
    Tensor y = selective_scan(conv, in[1], in[2], in[3], in[4], in[5], in[6], in[7], true).y;
    Tensor normed = rms_norm(y, in[5], 1e-5);
    autograd::backward(sum(mul(normed, normed)));
    std::vector<std::vector<float>> out;
    for (const Tensor& t : in) out.push_back(t.grad().to_vector<float>());
    return out;
  };
  const int saved = omp_get_max_threads();
  auto one = grads_with_threads(1), two = grads_with_threads(2);
  omp_set_num_threads(saved);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_EQ(one[i], two[i]) << "input " << i;
}

// The fused head against the two unfused ops it replaces, in f64 and f32, one chunk and many
// (including chunks that do not divide the rows), with ignored targets and an upstream gradient.
TEST(CpuKernels, LinearCrossEntropyMatchesCrossEntropyOfLinear) {
  Generator gen(24);
  const int64_t M = 37, D = 13, V = 29;
  Tensor h0 = uniform({M, D}, -1, 1, gen, DType::f64), w0 = uniform({V, D}, -1, 1, gen, DType::f64);
  std::vector<int64_t> t(static_cast<size_t>(M));
  for (int64_t i = 0; i < M; ++i) t[size_t(i)] = i % 5 == 3 ? -100 : (i * 7) % V;
  Tensor targets = from_vector(t, {M});
  for (DType dt : {DType::f64, DType::f32})
    for (int64_t chunk : {0, 1, 5, 36, 37, 100}) {
      SCOPED_TRACE(str_cat(dtype_name(dt), " chunk_rows ", chunk));
      const double tol = dt == DType::f64 ? 1e-12 : 1e-5;
      Tensor ha = h0.to(dt).set_requires_grad(true), wa = w0.to(dt).set_requires_grad(true);
      Tensor hb = h0.to(dt).set_requires_grad(true), wb = w0.to(dt).set_requires_grad(true);
      Tensor fused = linear_cross_entropy(ha, wa, targets, -100, chunk);
      Tensor unfused = cross_entropy(linear(hb, wb), targets);
      EXPECT_EQ(fused.dtype(), dt);
      EXPECT_EQ(fused.shape(), Shape{});
      EXPECT_LE(std::abs(fused.item() - unfused.item()), tol * std::abs(unfused.item()));
      autograd::backward(fused, full({}, 0.7, dt));
      autograd::backward(unfused, full({}, 0.7, dt));
      EXPECT_LE(relative_error(ha.grad(), hb.grad()), tol);
      EXPECT_LE(relative_error(wa.grad(), wb.grad()), tol);
    }
}

TEST(CpuKernels, LinearCrossEntropyEdgeCases) {
  Generator gen(25);
  Tensor h = uniform({4, 3}, -1, 1, gen, DType::f64).set_requires_grad(true);
  Tensor w = uniform({5, 3}, -1, 1, gen, DType::f64).set_requires_grad(true);
  // Every target ignored: a NaN mean, as in PyTorch, and zero gradients.
  Tensor loss = linear_cross_entropy(h, w, full({4}, -100, DType::i64));
  EXPECT_TRUE(std::isnan(loss.item()));
  autograd::backward(loss);
  for (double g : h.grad().to_vector<double>()) EXPECT_EQ(g, 0.0);
  for (double g : w.grad().to_vector<double>()) EXPECT_EQ(g, 0.0);
  // Without gradient recording the loss is the same and nothing is recorded.
  Tensor targets = from_vector<int32_t>({4, 0, 2, 2}, {4});
  const double with_grad = linear_cross_entropy(h, w, targets).item();
  autograd::NoGradGuard guard;
  Tensor plain = linear_cross_entropy(h, w, targets);
  EXPECT_EQ(plain.item(), with_grad);
  EXPECT_FALSE(plain.requires_grad());
}

}  // namespace
