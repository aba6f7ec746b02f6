// Activation checkpointing (autograd/checkpoint.h): gradients through a checkpointed function
// against finite differences and against the same function unrecorded, what the graph keeps, the
// parameter hooks, and the cases that fall through to a plain call.
#include "autograd/checkpoint.h"
#include "autograd/gradcheck.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

// Two outputs from two inputs and a parameter w used inside: (x * w + exp(y), silu(x) * y).
std::vector<Tensor> two_outputs(const std::vector<Tensor>& in, const Tensor& w) {
  return {add(mul(in[0], w), exp(in[1])), mul(silu(in[0]), in[1])};
}

TEST(Checkpoint, GradientsMatchFiniteDifferencesAndTheUncheckpointedFunction) {
  Generator gen(5);
  Tensor x = uniform({3, 4}, -1, 1, gen, DType::f64).set_requires_grad(true);
  Tensor y = uniform({3, 4}, -1, 1, gen, DType::f64).set_requires_grad(true);
  Tensor w = uniform({3, 4}, -1, 1, gen, DType::f64).set_requires_grad(true);
  Tensor c1 = uniform({3, 4}, -1, 1, gen, DType::f64), c2 = uniform({3, 4}, -1, 1, gen, DType::f64);
  auto loss = [&](bool checkpointed) {
    const autograd::CheckpointFn fn = [&](const std::vector<Tensor>& in) { return two_outputs(in, w); };
    std::vector<Tensor> out = checkpointed ? autograd::checkpoint(fn, {x, y}) : fn({x, y});
    return add(sum(mul(out[0], c1)), sum(mul(out[1], c2)));
  };
  autograd::GradcheckResult r = autograd::gradcheck([&](const std::vector<Tensor>&) { return loss(true); }, {x, y, w});
  EXPECT_LE(r.max_relative_error, 1e-7) << r.report;

  for (Tensor* t : {&x, &y, &w}) t->zero_grad();
  autograd::backward(loss(false));
  const std::vector<double> gx = x.grad().to_vector<double>(), gy = y.grad().to_vector<double>(),
                            gw = w.grad().to_vector<double>();
  for (Tensor* t : {&x, &y, &w}) t->zero_grad();
  autograd::backward(loss(true));
  // The same ops on the same values: the same bits.
  EXPECT_EQ(x.grad().to_vector<double>(), gx);
  EXPECT_EQ(y.grad().to_vector<double>(), gy);
  EXPECT_EQ(w.grad().to_vector<double>(), gw);
}

TEST(Checkpoint, KeepsOnlyItsInputsUntilBackward) {
  Generator gen(6);
  Tensor x = uniform({8}, -1, 1, gen, DType::f64).set_requires_grad(true);
  Tensor w = uniform({8}, -1, 1, gen, DType::f64).set_requires_grad(true);
  std::weak_ptr<TensorImpl> inner;
  const autograd::CheckpointFn fn = [&](const std::vector<Tensor>& in) {
    Tensor e = exp(in[0]);  // mul's backward would keep e if this were recorded
    inner = e.impl_ptr();
    return std::vector<Tensor>{mul(e, w)};
  };
  Tensor out = autograd::checkpoint(fn, {x})[0];
  EXPECT_TRUE(out.requires_grad());
  EXPECT_TRUE(inner.expired()) << "the first run records nothing, so its intermediates are gone";
  autograd::backward(sum(out));
  std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>(), gx = x.grad().to_vector<double>();
  for (size_t i = 0; i < xv.size(); ++i) EXPECT_NEAR(gx[i], std::exp(xv[i]) * wv[i], 1e-14);
}

TEST(Checkpoint, ParameterHookFiresOncePerBackward) {
  Tensor x = from_vector<double>({1.0, -2.0}, {2}).set_requires_grad(true);
  Tensor w = from_vector<double>({3.0, 0.5}, {2}).set_requires_grad(true);
  int calls = 0;
  w.impl().on_grad_ready = [&](Tensor&) { ++calls; };
  const autograd::CheckpointFn fn = [&](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{add(mul(in[0], w), mul(w, w))};  // w used twice inside
  };
  autograd::backward(sum(mul(autograd::checkpoint(fn, {x})[0], x)));
  EXPECT_EQ(calls, 1);
  // d/dw sum((x w + w^2) x) = x^2 + 2 w x
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{1.0 + 6.0, 4.0 - 2.0}));
}

TEST(Checkpoint, UndefinedInputsPassAndNoGradIsAPlainCall) {
  Tensor x = from_vector<double>({1.0, 2.0}, {2}).set_requires_grad(true);
  int runs = 0;
  const autograd::CheckpointFn fn = [&](const std::vector<Tensor>& in) {
    ++runs;
    EXPECT_FALSE(in[1].defined());
    return std::vector<Tensor>{scale(in[0], 2.0)};
  };
  autograd::backward(sum(autograd::checkpoint(fn, {x, Tensor()})[0]));
  EXPECT_EQ(runs, 2);  // once forward, once in backward
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2.0, 2.0}));
  {
    autograd::NoGradGuard no_grad;
    Tensor out = autograd::checkpoint(fn, {x, Tensor()})[0];
    EXPECT_FALSE(out.requires_grad());
  }
  EXPECT_EQ(runs, 3);
}

}  // namespace
