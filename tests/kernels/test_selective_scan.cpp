// selective_scan: gradchecks in float64 with each optional part on and off and over lengths and
// state sizes; the CPU kernel's float fast path (fast_exp, f32 against f64) and its independence
// from the thread count (checked together with the conv and rms_norm reductions that feed it);
// and the CUDA kernel against the CPU.
#include <omp.h>

#include <random>

#include "kernels/cpu/fast_exp.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(SelectiveScan, FastExpIsWithinTwoUlpOfTheLibrary) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.000731f) {
    const double ref = std::exp(double(x));
    worst = std::max(worst, std::abs(double(cpu::fast_exp(x)) - ref) / ref);
  }
  EXPECT_LE(worst, 2.5e-7);  // two float ulps at most
  EXPECT_EQ(cpu::fast_exp(-100.0f), 0.0f);
  EXPECT_EQ(cpu::fast_exp(0.0f), 1.0f);
}

struct ScanCase {
  int64_t L, E, N;
  bool use_D, use_z, use_bias, use_softplus;
};

void check_scan(const ScanCase& c, Generator& gen) {
  SCOPED_TRACE(str_cat("L ", c.L, " E ", c.E, " N ", c.N, " D ", c.use_D, " z ", c.use_z, " bias ", c.use_bias,
                       " softplus ", c.use_softplus));
  const int64_t B = 2;
  Tensor u = leaf({B, c.L, c.E}, gen);
  // Without softplus delta is used as is, so keep it positive like a real step size.
  Tensor delta = c.use_softplus ? leaf({B, c.L, c.E}, gen, -2, 1) : leaf({B, c.L, c.E}, gen, 0.05, 0.8);
  Tensor A = leaf({c.E, c.N}, gen, -2.0, -0.1);
  Tensor Bm = leaf({B, c.L, c.N}, gen), Cm = leaf({B, c.L, c.N}, gen);
  Tensor D = c.use_D ? leaf({c.E}, gen) : Tensor();
  Tensor z = c.use_z ? leaf({B, c.L, c.E}, gen, -2, 2) : Tensor();
  Tensor bias = c.use_bias ? leaf({c.E}, gen, -1, 0.5) : Tensor();
  const bool sp = c.use_softplus;
  expect_gradcheck(
      [sp](const std::vector<Tensor>& in) {
        return selective_scan(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], sp).y;
      },
      {u, delta, A, Bm, Cm, D, z, bias});
}

TEST(SelectiveScan, GradcheckEveryOptionalPart) {
  Generator gen(17);
  // Each optional part on and off, at a short odd length and E not a multiple of 8.
  for (int mask = 0; mask < 16; ++mask)
    check_scan({7, 5, 4, bool(mask & 1), bool(mask & 2), bool(mask & 4), bool(mask & 8)}, gen);
}

TEST(SelectiveScan, GradcheckLengthsAndStateSizes) {
  Generator gen(18);
  for (int64_t L : {1, 7, 37})
    for (int64_t N : {1, 4, 16}) {
      check_scan({L, 13, N, true, true, true, true}, gen);
      if (L != 7) check_scan({L, 3, N, false, false, false, true}, gen);
    }
  // More channels than one block of the CPU kernel (16), not a multiple of it.
  check_scan({7, 21, 4, true, true, true, true}, gen);
}

// With recompute_delta the node keeps no delta of its own: delta's storage is freed after the
// forward, the backward asks for it once, and every gradient is the same bits as with delta kept.
TEST(SelectiveScan, RecomputedDeltaGivesTheSameGradients) {
  Generator gen(21);
  const int64_t B = 2, L = 37, E = 5, N = 4;
  Tensor u = leaf({B, L, E}, gen), A = leaf({E, N}, gen, -2.0, -0.1), Bm = leaf({B, L, N}, gen);
  Tensor Cm = leaf({B, L, N}, gen), D = leaf({E}, gen), z = leaf({B, L, E}, gen, -2, 2), bias = leaf({E}, gen, -1, 0.5);
  Tensor low = leaf({B * L, 3}, gen), w = leaf({E, 3}, gen);  // delta = low w^T, as dt_proj makes it
  Tensor weights = uniform({B, L, E}, -1, 1, gen, DType::f64);
  const std::vector<Tensor> inputs = {u, A, Bm, Cm, D, z, bias, low, w};
  auto run = [&](bool recompute) {
    for (Tensor t : inputs) t.zero_grad();
    int calls = 0;
    std::weak_ptr<Storage> delta_storage;
    Tensor loss;
    {
      Tensor delta = reshape(linear(low, w), {B, L, E});
      delta_storage = delta.impl().storage;
      const RecomputeFn again = [&calls, low = low.detach(), w = w.detach(), B, L, E] {
        ++calls;
        return reshape(linear(low, w), {B, L, E});
      };
      ScanOutput out = selective_scan(u, delta, A, Bm, Cm, D, z, bias, true, recompute ? again : RecomputeFn());
      loss = sum(mul(out.y, weights));
    }
    EXPECT_EQ(delta_storage.expired(), recompute) << "only the scan node would keep delta";
    autograd::backward(loss);
    EXPECT_EQ(calls, recompute ? 1 : 0);
    std::vector<std::vector<double>> grads;
    for (const Tensor& t : inputs) grads.push_back(t.grad().to_vector<double>());
    return grads;
  };
  const auto kept = run(false), recomputed = run(true);
  for (size_t i = 0; i < kept.size(); ++i) EXPECT_EQ(kept[i], recomputed[i]) << "input " << i;
}

TEST(SelectiveScan, FloatMatchesDouble) {
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

// Backward of every reducing kernel, once on one thread and once on two: bitwise equal.
TEST(SelectiveScan, ResultsDoNotDependOnTheThreadCount) {
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

// ---- the CUDA kernel ----
// Forward output, last state and every gradient against the CPU kernel, in f32 and bf16, on odd
// shapes (L = 1, L across several time chunks and not a multiple of the chunk length, channels not
// a multiple of the block's 32, N from 1 to 64) and with each optional part on and off. Fresh
// random inputs every run; the seed is printed.

struct CudaScanCase {
  int64_t B, L, E, N;
  bool use_D = true, use_z = true, use_bias = true, softplus = true;
};

class SelectiveScanCuda : public CudaTest, public ::testing::WithParamInterface<CudaScanCase> {};

void check_case(const CudaScanCase& c, DType act, uint64_t seed) {
  SCOPED_TRACE(str_cat("B ", c.B, " L ", c.L, " E ", c.E, " N ", c.N, " D ", c.use_D, " z ", c.use_z, " bias ",
                       c.use_bias, " softplus ", c.softplus, " ", dtype_name(act), " seed ", seed));
  Generator gen(seed);
  const Device gpu = Device::cuda(0);
  // Activations are rounded to the activation dtype first so both sides see the same values.
  auto act_input = [&](const Shape& s, double lo, double hi) { return uniform(s, lo, hi, gen, act).to(DType::f64); };
  auto param = [&](const Shape& s, double lo, double hi) { return uniform(s, lo, hi, gen, DType::f32).to(DType::f64); };
  std::vector<Tensor> ref = {
      act_input({c.B, c.L, c.E}, -1, 1),
      c.softplus ? act_input({c.B, c.L, c.E}, -3, 1) : act_input({c.B, c.L, c.E}, 0.01, 0.5),  // delta
      param({c.E, c.N}, -3, -0.2), act_input({c.B, c.L, c.N}, -1, 1), act_input({c.B, c.L, c.N}, -1, 1),
      c.use_D ? param({c.E}, -1, 1) : Tensor(), c.use_z ? act_input({c.B, c.L, c.E}, -2, 2) : Tensor(),
      // Without softplus, delta + bias must stay positive or the state grows without bound.
      c.use_bias ? (c.softplus ? param({c.E}, -2, 0) : param({c.E}, 0, 0.2)) : Tensor()};
  const std::vector<bool> is_param = {false, false, true, false, false, true, false, true};
  std::vector<Tensor> dev(ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!ref[i].defined()) continue;
    dev[i] = ref[i].to(is_param[i] ? DType::f32 : act).to(gpu).set_requires_grad(true);
    ref[i].set_requires_grad(true);
  }
  ScanOutput r = selective_scan(ref[0], ref[1], ref[2], ref[3], ref[4], ref[5], ref[6], ref[7], c.softplus);
  ScanOutput g = selective_scan(dev[0], dev[1], dev[2], dev[3], dev[4], dev[5], dev[6], dev[7], c.softplus);
  const double tol = act == DType::bf16 ? 1e-2 : 1e-5;
  EXPECT_LE(relative_error(g.y, r.y), tol) << "output";
  EXPECT_LE(relative_error(g.last_state, r.last_state), tol) << "last state";
  Tensor w = uniform(r.y.shape(), -1, 1, gen, act).to(DType::f64);
  autograd::backward(sum(mul(r.y, w)));
  autograd::backward(sum(mul(g.y, w.to(act).to(gpu))));
  const char* names[] = {"u", "delta", "A", "B", "C", "D", "z", "delta_bias"};
  for (size_t i = 0; i < ref.size(); ++i)
    if (ref[i].defined()) {
      EXPECT_LE(relative_error(dev[i].grad(), ref[i].grad()), tol) << "gradient of " << names[i];
    }
}

TEST_P(SelectiveScanCuda, MatchesCpuInF32AndBf16) {
  const uint64_t seed = seed_;  // fresh each run, printed by CudaTest
  check_case(GetParam(), DType::f32, seed);
  check_case(GetParam(), DType::bf16, seed + 1);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, SelectiveScanCuda,
    ::testing::Values(CudaScanCase{2, 1, 24, 1}, CudaScanCase{2, 7, 24, 4}, CudaScanCase{1, 37, 24, 16},
                      CudaScanCase{2, 300, 24, 16}, CudaScanCase{2, 1000, 40, 16}, CudaScanCase{1, 129, 33, 5},
                      CudaScanCase{1, 70, 24, 33}, CudaScanCase{2, 45, 24, 64}, CudaScanCase{1, 257, 1536, 16},
                      CudaScanCase{1, 8192, 40, 16}, CudaScanCase{2, 37, 24, 16, false, false, false, true},
                      CudaScanCase{2, 300, 24, 16, true, false, true, false},
                      CudaScanCase{2, 300, 24, 16, false, true, false, true},
                      CudaScanCase{1, 160, 24, 8, true, true, false, false}),
    [](const ::testing::TestParamInfo<CudaScanCase>& info) {
      const CudaScanCase& c = info.param;
      return str_cat("B", c.B, "_L", c.L, "_E", c.E, "_N", c.N, c.use_D ? "_D" : "", c.use_z ? "_z" : "",
                     c.use_bias ? "_bias" : "", c.softplus ? "_softplus" : "");
    });

}  // namespace
