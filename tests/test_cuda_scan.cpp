// The CUDA selective scan against the CPU kernel: forward output, last state and every gradient,
// in f32 and bf16, on odd shapes (L = 1, L across several time chunks and not a multiple of the
// chunk length, channels not a multiple of the block's 32, N from 1 to 64) and with each
// optional part on and off. Fresh random inputs every run; the seed is printed.
#include <random>

#include "helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

struct Case {
  int64_t B, L, E, N;
  bool use_D = true, use_z = true, use_bias = true, softplus = true;
};

class CudaScan : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
#ifndef SERPENT_CUDA
    GTEST_SKIP() << "built without the CUDA backend: CUDA parity tests run only in CUDA builds";
#else
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible: CUDA parity tests run on a GPU machine";
#endif
  }
};

void check_case(const Case& c, DType act, uint64_t seed) {
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

TEST_P(CudaScan, MatchesCpuInF32AndBf16) {
  const uint64_t seed = std::random_device{}();
  std::printf("fresh seed %llu\n", (unsigned long long)seed);
  check_case(GetParam(), DType::f32, seed);
  check_case(GetParam(), DType::bf16, seed + 1);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaScan,
    ::testing::Values(Case{2, 1, 24, 1}, Case{2, 7, 24, 4}, Case{1, 37, 24, 16}, Case{2, 300, 24, 16},
                      Case{2, 1000, 40, 16}, Case{1, 129, 33, 5}, Case{1, 70, 24, 33}, Case{2, 45, 24, 64},
                      Case{1, 257, 1536, 16}, Case{2, 37, 24, 16, false, false, false, true},
                      Case{2, 300, 24, 16, true, false, true, false}, Case{2, 300, 24, 16, false, true, false, true},
                      Case{1, 160, 24, 8, true, true, false, false}),
    [](const ::testing::TestParamInfo<Case>& info) {
      const Case& c = info.param;
      return str_cat("B", c.B, "_L", c.L, "_E", c.E, "_N", c.N, c.use_D ? "_D" : "", c.use_z ? "_z" : "",
                     c.use_bias ? "_bias" : "", c.softplus ? "_softplus" : "");
    });

}  // namespace
