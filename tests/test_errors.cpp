// Bad input gives a serpent::Error whose message names the problem: one test per case.
#include "helpers.h"
#include "layers/mamba.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

MambaConfig byte_config() {
  MambaConfig c;
  c.d_model = 16;
  c.n_layer = 1;
  c.vocab_size = 256;
  return c;
}

TEST(BadInput, MismatchedShape) {
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

TEST(BadInput, WrongDtype) {
  expect_error([] { add(zeros({3}, DType::f32), zeros({3}, DType::f64)); }, {"add", "f32[3]", "f64[3]", "same dtype"});
  expect_error([] { embedding(zeros({4, 2}), zeros({3}, DType::f32)); }, {"embedding", "ids", "i32 or i64", "f32"});
  expect_error([] { cross_entropy(zeros({2, 4}), zeros({2}, DType::f64)); }, {"cross_entropy", "targets", "f64"});
}

TEST(BadInput, TokenIdOutsideVocabulary) {
  Generator gen(1);
  MambaLM model(byte_config(), gen);
  Tensor ids = from_vector<int64_t>({72, 105, 300, 33}, {1, 4});
  expect_error([&] { model.forward(ids); }, {"token id 300", "position 2", "[0, 256)"});
  Tensor negative = from_vector<int64_t>({-1}, {1, 1});
  expect_error([&] { model.forward(negative); }, {"token id -1"});
  expect_error(
      [] {
        cross_entropy(zeros({2, 4}), from_vector<int64_t>({1, 4}, {2}));
      },
      {"target 4", "row 1", "[0, 4)"});
}

TEST(BadInput, EmptyBatch) {
  Generator gen(1);
  MambaLM model(byte_config(), gen);
  expect_error([&] { model.forward(Tensor::empty({0, 8}, DType::i64)); }, {"empty batch", "[0, 8]"});
  expect_error([&] { model.forward(Tensor::empty({2, 0}, DType::i64)); }, {"empty batch"});
  expect_error([] { cross_entropy(zeros({0, 5}), Tensor::empty({0}, DType::i64)); }, {"cross_entropy", "empty"});
}

TEST(BadInput, InvalidModelConfig) {
  MambaConfig c = byte_config();
  c.d_state = 0;
  Generator gen(1);
  expect_error([&] { MambaLM m(c, gen); }, {"model.d_state", "must be >= 1", "got 0"});
  c = byte_config();
  c.bias = true;
  expect_error([&] { MambaLM m(c, gen); }, {"model.bias"});
}

TEST(BadInput, LinearCrossEntropyArguments) {
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

}  // namespace
