// matmul, linear and linear_rows: gradchecks in float64, linear_rows against linear on row views,
// and the cuBLAS path against the CPU in f32 and bf16 (and linear_rows' mixed-precision path),
// forward and backward.
#include <tuple>

#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(Matmul, GradcheckMatmulAndLinear) {
  Generator gen(13);
  for (auto [M, K, N] : {std::tuple{1, 1, 1}, {5, 7, 3}, {9, 4, 11}}) {
    Tensor a = leaf({M, K}, gen), b = leaf({K, N}, gen), w = leaf({N, K}, gen);
    expect_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b});
    expect_gradcheck([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); }, {a, w});
  }
}

// sum_i linear_rows(x, w, rows)[i] @ P_i for fixed random P_i (rows[i], 3): an (M, 3) result that
// every output and every row block reaches (a matrix, so that relative errors do not depend on
// how much a single sum happens to cancel).
Tensor projected_rows(const Tensor& x, const Tensor& w, const std::vector<int64_t>& rows, uint64_t seed) {
  const std::vector<Tensor> outs = linear_rows(x, w, rows);
  Generator gen(seed);
  Tensor total;
  for (const Tensor& o : outs) {
    Tensor term = matmul(o, uniform({o.size(1), 3}, -1, 1, gen, DType::f64).to(o.dtype()).to(o.device()));
    total = total.defined() ? add(total, term) : term;
  }
  return total;
}

const std::vector<std::vector<int64_t>> kRowSplits = {{1}, {2, 3, 1}, {4, 4}, {1, 1, 1, 1, 1}};

TEST(Matmul, GradcheckLinearRows) {
  Generator gen(14);
  // K 5: a product per block except for {1}; K 24: one product except for {4, 4}.
  for (const auto& rows : kRowSplits)
    for (int64_t K : {5, 24})
      for (int64_t M : {1, 6}) {
        int64_t N = 0;
        for (int64_t n : rows) N += n;
        Tensor x = leaf({M, K}, gen), w = leaf({N, K}, gen);
        expect_gradcheck([&](const std::vector<Tensor>& in) { return projected_rows(in[0], in[1], rows, 5); }, {x, w});
      }
}

class LinearRowsEqualsLinear : public ::testing::TestWithParam<int64_t> {};

// K 7: a product per row block; K 41: one product (10 rows are at most a quarter of 41 columns).
TEST_P(LinearRowsEqualsLinear, OnRowViewsOfTheWeight) {
  Generator gen(15);
  const std::vector<int64_t> rows = {3, 5, 2};
  const int64_t K = GetParam();
  Tensor x = leaf({9, K}, gen), w = leaf({10, K}, gen);
  Tensor x2 = x.detach().clone().set_requires_grad(true), w2 = w.detach().clone().set_requires_grad(true);
  autograd::backward(sum(projected_rows(x, w, rows, 6)));
  // The same outputs through linear on narrowed views of the weight (the former formulation).
  Generator pgen(6);
  Tensor total;
  std::vector<Tensor> outs = linear_rows(x.detach(), w.detach(), rows);
  for (int64_t i = 0, start = 0; i < 3; start += rows[size_t(i)], ++i) {
    Tensor o = linear(x2, narrow(w2, 0, start, rows[size_t(i)]));
    EXPECT_LE(relative_error(outs[size_t(i)], o), 1e-15);
    Tensor term = matmul(o, uniform({o.size(1), 3}, -1, 1, pgen, DType::f64));
    total = total.defined() ? add(total, term) : term;
  }
  autograd::backward(sum(total));
  EXPECT_LE(relative_error(x.grad(), x2.grad()), 1e-13);
  EXPECT_LE(relative_error(w.grad(), w2.grad()), 1e-13);
}

INSTANTIATE_TEST_SUITE_P(BlockAndWhole, LinearRowsEqualsLinear, ::testing::Values(7, 41));

TEST(Matmul, LinearRowsRefusesBlocksThatDoNotCoverTheWeight) {
  Generator gen(16);
  Tensor x = uniform({4, 3}, -1, 1, gen, DType::f64), w = uniform({6, 3}, -1, 1, gen, DType::f64);
  expect_error([&] { linear_rows(x, w, {2, 3}); }, {"linear_rows", "add up to 5", "[6, 3]", "has 6"});
  expect_error([&] { linear_rows(x, w, {6, 0}); }, {"linear_rows", "at least one row", "got 0"});
}

class MatmulCuda : public CudaTest {};

TEST_F(MatmulCuda, LinearRowsParity) {
  Generator gen(seed_);
  for (auto [M, K] : {std::tuple{1, 1}, {257, 129}, {2048, 768}}) {
    const std::vector<int64_t> rows = {48, 16, 16};
    Tensor x = uniform({M, K}, -1, 1, gen, DType::f64), w = uniform({80, K}, -1, 1, gen, DType::f64);
    for (DType dt : {DType::f32, DType::bf16}) {
      if (M * K == 1 && dt == DType::bf16) continue;
      SCOPED_TRACE(str_cat(M, "x", K, " ", dtype_name(dt)));
      expect_parity([&](const std::vector<Tensor>& in) { return projected_rows(in[0], in[1], rows, 7); }, {x, w}, dt,
                    gpu_);
    }
    // In bf16 the 1 x 1 input's gradient is one element summed from 80 rounded terms, whose
    // relative error can exceed any fixed tolerance when the terms cancel: f32 only there.
    if (M * K == 1) continue;
    // Mixed precision, as in the model: bf16 input, f32 weight (read through its bf16 copy), the
    // weight's gradient in f32; against the f64 reference on the same rounded values.
    SCOPED_TRACE(str_cat(M, "x", K, " bf16 input, f32 weight"));
    Tensor xr = x.to(DType::bf16).to(DType::f64), wr = w.to(DType::bf16).to(DType::f64);
    Tensor xc = xr.clone().set_requires_grad(true), wc = wr.clone().set_requires_grad(true);
    Tensor xg = xr.to(DType::bf16).to(gpu_).set_requires_grad(true),
           wg = wr.to(DType::f32).to(gpu_).set_requires_grad(true);
    Tensor oc = projected_rows(xc, wc, rows, 8), og = projected_rows(xg, wg, rows, 8);
    EXPECT_LE(relative_error(og, oc), parity_tolerance(DType::bf16));
    Tensor seed_grad = uniform(oc.shape(), -1, 1, gen, DType::f64);
    autograd::backward(oc, seed_grad);
    autograd::backward(og, seed_grad.to(DType::bf16).to(gpu_));
    EXPECT_EQ(wg.grad().dtype(), DType::f32);
    EXPECT_LE(relative_error(xg.grad(), xc.grad()), 2 * parity_tolerance(DType::bf16));
    EXPECT_LE(relative_error(wg.grad(), wc.grad()), 2 * parity_tolerance(DType::bf16));
  }
}

TEST_F(MatmulCuda, ParityForwardAndBackward) {
  Generator gen(seed_);
  for (auto [M, K, N] : {std::tuple{1, 1, 1}, {7, 13, 5}, {257, 129, 65}, {64, 1536, 48}}) {
    Tensor a = uniform({M, K}, -1, 1, gen, DType::f64), b = uniform({K, N}, -1, 1, gen, DType::f64);
    Tensor w = uniform({N, K}, -1, 1, gen, DType::f64);
    for (DType dt : {DType::f32, DType::bf16}) {
      SCOPED_TRACE(str_cat(M, "x", K, "x", N, " ", dtype_name(dt)));
      expect_parity([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b}, dt, gpu_);
      expect_parity([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); }, {a, w}, dt, gpu_);
    }
  }
}

}  // namespace
