// The shape ops (reshape, slice_last, narrow; cast to the same dtype rides along): gradchecks in
// float64. Their CUDA column slices are checked with the sums in kernels/test_elementwise.cpp.
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(ShapeOps, Gradcheck) {
  Generator gen(12);
  Tensor a = leaf({2, 3, 5}, gen);
  expect_gradcheck([](const std::vector<Tensor>& in) { return reshape(in[0], {6, 5}); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& in) { return slice_last(in[0], 1, 3); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& in) { return slice_last(in[0], 4, 1); }, {a});
  // narrow views rows of dimension 0 (the only contiguous case, the one the model uses).
  Tensor rows = leaf({5, 3}, gen);
  expect_gradcheck([](const std::vector<Tensor>& in) { return narrow(in[0], 0, 1, 2); }, {rows});
  expect_gradcheck([](const std::vector<Tensor>& in) { return narrow(in[0], 0, 4, 1); }, {rows});
  expect_gradcheck([](const std::vector<Tensor>& in) { return narrow(in[0], 0, 0, 5); }, {rows});
  expect_gradcheck([](const std::vector<Tensor>& in) { return narrow(in[0], 0, 1, 1); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& in) { return cast(in[0], DType::f64); }, {a});
}

}  // namespace
