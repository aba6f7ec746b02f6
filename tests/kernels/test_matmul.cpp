// matmul and linear: gradchecks in float64, and the cuBLAS path against the CPU in f32 and bf16,
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

class MatmulCuda : public CudaTest {};

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
