// The backward engine: ordering, accumulation, freeing, grad mode, hooks.
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(Autograd, ChainAndReuseAccumulate) {
  // f(x) = sum(x * x + exp(x)): x is used three times; df/dx = 2x + exp(x).
  Tensor x = from_vector<double>({0.5, -1.0, 2.0}, {3});
  x.set_requires_grad(true);
  Tensor f = sum(add(mul(x, x), exp(x)));
  autograd::backward(f);
  std::vector<double> g = x.grad().to_vector<double>();
  EXPECT_NEAR(g[0], 1.0 + std::exp(0.5), 1e-14);
  EXPECT_NEAR(g[1], -2.0 + std::exp(-1.0), 1e-14);
  EXPECT_NEAR(g[2], 4.0 + std::exp(2.0), 1e-13);
}

TEST(Autograd, DiamondRunsEachNodeOnceAfterAllItsConsumers) {
  // y = exp(x) feeds two branches that meet again: y's gradient must be complete (both
  // branches summed) before exp's backward runs, or the result would miss a branch.
  Tensor x = from_vector<double>({0.3}, {1});
  x.set_requires_grad(true);
  Tensor y = exp(x);
  Tensor f = sum(add(scale(y, 3.0), mul(y, y)));  // 3y + y^2 -> df/dx = (3 + 2y) y
  autograd::backward(f);
  const double yv = std::exp(0.3);
  EXPECT_NEAR(x.grad().item(), (3 + 2 * yv) * yv, 1e-13);
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = from_vector<double>({1.0, 2.0}, {2});
  x.set_requires_grad(true);
  autograd::backward(sum(scale(x, 2.0)));
  autograd::backward(sum(scale(x, 3.0)));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5.0, 5.0}));
}

TEST(Autograd, SavedTensorsAreFreedAsBackwardRuns) {
  Tensor x = from_vector<double>({1.0, 2.0}, {2});
  x.set_requires_grad(true);
  std::weak_ptr<TensorImpl> saved;
  Tensor f;
  {
    Tensor e = exp(x);
    saved = e.impl_ptr();
    f = sum(mul(e, e));
  }
  EXPECT_FALSE(saved.expired()) << "the graph holds the intermediate until backward";
  autograd::backward(f);
  EXPECT_TRUE(saved.expired()) << "backward should release what the graph saved";
  expect_error([&] { autograd::backward(f); }, {"already freed", "retain_graph"});
}

TEST(Autograd, AnActivationNoBackwardReadsIsFreedBeforeBackward) {
  Tensor x = from_vector<double>({1.0, 2.0}, {2});
  x.set_requires_grad(true);
  std::weak_ptr<Storage> storage;
  Tensor f;
  {
    // scale's and add's backwards read no input: the graph keeps only an edge to a's node.
    Tensor a = scale(x, 3.0);
    storage = a.impl().storage;
    f = sum(add(a, a));
  }
  EXPECT_TRUE(storage.expired()) << "the graph must not hold the storage of an input its backward does not read";
  autograd::backward(f);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{6.0, 6.0}));
}

TEST(Autograd, RetainGraphAllowsASecondBackward) {
  Tensor x = from_vector<double>({2.0}, {1});
  x.set_requires_grad(true);
  Tensor f = sum(mul(x, x));
  autograd::backward(f, Tensor(), /*retain_graph=*/true);
  autograd::backward(f);
  EXPECT_EQ(x.grad().item(), 8.0);
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Tensor x = from_vector<double>({2.0}, {1});
  x.set_requires_grad(true);
  Tensor y;
  {
    autograd::NoGradGuard guard;
    EXPECT_FALSE(autograd::grad_enabled());
    y = mul(x, x);
  }
  EXPECT_TRUE(autograd::grad_enabled());
  EXPECT_FALSE(y.requires_grad());
  EXPECT_TRUE(y.is_leaf());
  expect_error([&] { autograd::backward(y); }, {"does not require a gradient"});
}

TEST(Autograd, InputsWithoutGradGetNone) {
  Tensor x = from_vector<double>({1.0, 2.0}, {2});
  Tensor w = from_vector<double>({3.0, 4.0}, {2});
  w.set_requires_grad(true);
  autograd::backward(sum(mul(x, w)));
  EXPECT_FALSE(x.grad().defined());
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{1.0, 2.0}));
}

TEST(Autograd, GradReadyHookFiresOnceWithTheCompleteGradient) {
  Tensor x = from_vector<double>({1.0, -1.0}, {2});
  x.set_requires_grad(true);
  int calls = 0;
  std::vector<double> seen;
  x.impl().on_grad_ready = [&](Tensor& t) {
    ++calls;
    seen = t.grad().to_vector<double>();
  };
  // x reaches the loss through two paths; the hook must see both contributions.
  Tensor f = sum(add(scale(x, 2.0), mul(x, x)));
  autograd::backward(f);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, (std::vector<double>{4.0, 0.0}));
}

TEST(Autograd, MultiOutputNodeGetsZerosForUnusedOutputs) {
  // add_rms_norm has two outputs; using only one must still give the right gradient.
  Generator gen(3);
  Tensor h = leaf({3, 5}, gen), r = leaf({3, 5}, gen), w = leaf({5}, gen);
  expect_gradcheck([](const std::vector<Tensor>& in) { return add_rms_norm(in[0], in[1], in[2], 1e-5).second; },
                   {h, r, w});
  expect_gradcheck([](const std::vector<Tensor>& in) { return add_rms_norm(in[0], in[1], in[2], 1e-5).first; },
                   {h, r, w});
}

}  // namespace
