// The ops' argument checks (autograd/checks.h): bad input gives a serpent::Error whose message
// names the op and the problem, one test per kind of mistake across several ops. The checks
// particular to one op are in that op's test file (kernels/test_*.cpp), the model's in
// layers/test_mamba.cpp.
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(OpChecks, MismatchedShape) {
  Tensor x = zeros({4, 6}), w = zeros({3, 5});
  expect_error([&] { linear(x, w); }, {"linear", "[4, 6]", "[3, 5]", "6 features", "expects 5"});
  expect_error([&] { add(zeros({2, 3}), zeros({3, 2})); }, {"add", "[2, 3]", "[3, 2]"});
  expect_error(
      [&] {
        selective_scan(zeros({1, 4, 5}), zeros({1, 4, 6}), zeros({5, 2}), zeros({1, 4, 2}), zeros({1, 4, 2}), Tensor(),
                       Tensor(), Tensor(), true);
      },
      {"selective_scan", "delta", "[1, 4, 6]", "expected [1, 4, 5]"});
}

TEST(OpChecks, WrongDtype) {
  expect_error([] { add(zeros({3}, DType::f32), zeros({3}, DType::f64)); }, {"add", "f32[3]", "f64[3]", "same dtype"});
  expect_error([] { embedding(zeros({4, 2}), zeros({3}, DType::f32)); }, {"embedding", "ids", "i32 or i64", "f32"});
  expect_error([] { cross_entropy(zeros({2, 4}), zeros({2}, DType::f64)); }, {"cross_entropy", "targets", "f64"});
}

}  // namespace
