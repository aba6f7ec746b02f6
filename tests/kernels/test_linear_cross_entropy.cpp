// linear_cross_entropy, the fused LM head: the chunked gradcheck, equality with cross_entropy of
// linear, the edge cases and bad arguments on the CPU, and the CUDA kernels against the CPU (see
// test_rms_norm.cpp for the tolerances).
#include <cmath>
#include <random>

#include "tests/helpers.h"
#ifdef SERPENT_CUDA
#include "core/cuda/runtime.h"
#include "kernels/cuda/index_check.h"
#endif

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(LinearCrossEntropy, GradcheckChunkedWithIgnoredTargets) {
  Generator gen(20);
  Tensor h = leaf({7, 5}, gen), w = leaf({11, 5}, gen);
  Tensor targets = from_vector<int64_t>({3, -100, 0, 10, 5, -100, 7}, {7});
  // One chunk, chunks of 3 rows (the last one short) and single-row chunks.
  for (int64_t chunk : {0, 3, 1}) {
    SCOPED_TRACE(str_cat("chunk_rows ", chunk));
    expect_gradcheck(
        [targets, chunk](const std::vector<Tensor>& in) {
          return linear_cross_entropy(in[0], in[1], targets, -100, chunk);
        },
        {h, w});
  }
  Tensor t32 = from_vector<int32_t>({1, 4, 4, 0, 2, 4, 9}, {7});
  expect_gradcheck([t32](const std::vector<Tensor>& in) { return linear_cross_entropy(in[0], in[1], t32, 4, 2); },
                   {h, w});
}

// The fused head against the two unfused ops it replaces, in f64 and f32, one chunk and many
// (including chunks that do not divide the rows), with ignored targets and an upstream gradient.
TEST(LinearCrossEntropy, MatchesCrossEntropyOfLinear) {
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

TEST(LinearCrossEntropy, EdgeCases) {
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

TEST(LinearCrossEntropy, BadArgumentsAreNamed) {
  Tensor h = zeros({3, 4}), w = zeros({6, 4});
  expect_error(
      [&] {
        linear_cross_entropy(h, w, from_vector<int64_t>({1, 6, 0}, {3}));
      },
      {"linear_cross_entropy", "target 6", "row 1", "[0, 6)", "ignore index -100"});
  expect_error(
      [&] {
        linear_cross_entropy(h, zeros({6, 5}), zeros({3}, DType::i64));
      },
      {"linear_cross_entropy", "[3, 4]", "[6, 5]", "features"});
  expect_error([&] { linear_cross_entropy(h, w, zeros({2}, DType::i64)); },
               {"linear_cross_entropy", "targets", "[2]", "expected [3]"});
  expect_error(
      [&] {
        linear_cross_entropy(h, zeros({6, 4}, DType::f64), zeros({3}, DType::i64));
      },
      {"linear_cross_entropy", "weight", "f64[6, 4]", "same dtype"});
  expect_error([&] { linear_cross_entropy(h, w, zeros({3}, DType::i64), -100, -2); }, {"chunk_rows", "-2"});
}

class LinearCrossEntropyCuda : public CudaTest {};

struct LceCase {
  int64_t M, D, V, chunk;
};

TEST_F(LinearCrossEntropyCuda, Parity) {
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
        EXPECT_LE(std::abs(lg.item() - lc.item()), parity_tolerance(dt) * std::abs(lc.item()));
        expect_cuda_close(hg.grad(), hc.grad(), dt, "gradient of h");
        // f32 accumulation of bf16 products: the operands' precision bounds it.
        expect_cuda_close(wg.grad(), wc.grad(), DType::f32, parity_tolerance(dt), "gradient of the weight");
      }
    }
  }
}

TEST_F(LinearCrossEntropyCuda, UsesTheWeightsBf16Copy) {
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
TEST_F(LinearCrossEntropyCuda, EdgeCasesAndBadTargets) {
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

}  // namespace
