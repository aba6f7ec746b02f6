// The elementwise ops (add, sub, mul, scale, exp, silu, softplus, the sum and mean reductions,
// cast): gradchecks in float64, and the CUDA kernels against the CPU in f32 and bf16, forward and
// backward (column slices ride along with the sums).
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(Elementwise, Gradcheck) {
  Generator gen(11);
  Tensor a = leaf({3, 7}, gen, -2, 2), b = leaf({3, 7}, gen, -2, 2);
  expect_gradcheck([](const std::vector<Tensor>& in) { return add(in[0], in[1]); }, {a, b});
  expect_gradcheck([](const std::vector<Tensor>& in) { return sub(in[0], in[1]); }, {a, b});
  expect_gradcheck([](const std::vector<Tensor>& in) { return mul(in[0], in[1]); }, {a, b});
  expect_gradcheck([](const std::vector<Tensor>& in) { return scale(in[0], -0.7); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& in) { return exp(in[0]); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& in) { return silu(in[0]); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& in) { return sum(in[0]); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& in) { return mean(in[0]); }, {a});
}

TEST(Elementwise, SoftplusGradcheckBothSidesOfTheThreshold) {
  // Values around 0 and beyond 20, where softplus switches to the identity.
  Tensor a = from_vector<double>({-3.0, -0.5, 0.0, 0.7, 4.0, 19.0, 21.0, 30.0}, {8});
  a.set_requires_grad(true);
  expect_gradcheck([](const std::vector<Tensor>& in) { return softplus(in[0]); }, {a});
}

TEST(Elementwise, CastPassesTheGradientBackInTheInputsDtype) {
  // f64 -> f32 cannot be checked by float64 differences; its backward is the upstream gradient
  // converted back to f64, exactly for values f32 represents.
  Tensor x = from_vector<double>({0.5, -1.25, 3.0}, {3});
  x.set_requires_grad(true);
  Tensor w = from_vector<float>({2.0f, -0.75f, 0.125f}, {3}, DType::f32);
  Tensor y = cast(x, DType::f32);
  EXPECT_EQ(y.dtype(), DType::f32);
  autograd::backward(sum(mul(y, w)));
  ASSERT_EQ(x.grad().dtype(), DType::f64);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2.0, -0.75, 0.125}));
}

// Inputs are fresh random draws every run (the seed is printed).
class ElementwiseCuda : public CudaTest {};

TEST_F(ElementwiseCuda, Parity) {
  Generator gen(seed_);
  for (int64_t n : {1, 7, 100003}) {
    Tensor a = uniform({n}, -4, 4, gen, DType::f64), b = uniform({n}, -4, 4, gen, DType::f64);
    Tensor big = uniform({n}, 15, 25, gen, DType::f64);  // around softplus's threshold
    for (DType dt : {DType::f32, DType::bf16}) {
      SCOPED_TRACE(str_cat("n ", n, " ", dtype_name(dt)));
      expect_parity([](const std::vector<Tensor>& in) { return add(in[0], in[1]); }, {a, b}, dt, gpu_);
      expect_parity([](const std::vector<Tensor>& in) { return sub(in[0], in[1]); }, {a, b}, dt, gpu_);
      expect_parity([](const std::vector<Tensor>& in) { return mul(in[0], in[1]); }, {a, b}, dt, gpu_);
      expect_parity([](const std::vector<Tensor>& in) { return scale(in[0], 0.37); }, {a}, dt, gpu_);
      expect_parity([](const std::vector<Tensor>& in) { return exp(in[0]); }, {a}, dt, gpu_);
      expect_parity([](const std::vector<Tensor>& in) { return silu(in[0]); }, {a}, dt, gpu_);
      expect_parity([](const std::vector<Tensor>& in) { return softplus(in[0]); }, {a}, dt, gpu_);
      expect_parity([](const std::vector<Tensor>& in) { return softplus(in[0]); }, {big}, dt, gpu_);
    }
  }
}

TEST_F(ElementwiseCuda, SumAndSliceParity) {
  Generator gen(seed_);
  Tensor a = uniform({37, 129}, -1, 1, gen, DType::f64);
  for (DType dt : {DType::f32, DType::bf16}) {
    expect_parity([](const std::vector<Tensor>& in) { return sum(in[0]); }, {a}, dt, gpu_);
    expect_parity([](const std::vector<Tensor>& in) { return slice_last(in[0], 5, 100); }, {a}, dt, gpu_);
    expect_parity([](const std::vector<Tensor>& in) { return slice_last(in[0], 128, 1); }, {a}, dt, gpu_);
  }
  // A large sum exercises the two-pass reduction across many blocks.
  Tensor big = uniform({3000017}, 0, 1, gen, DType::f64);
  EXPECT_LE(relative_error(sum(big.to(DType::f32).to(gpu_)), sum(big.to(DType::f32).to(DType::f64))), 1e-5);
}

}  // namespace
