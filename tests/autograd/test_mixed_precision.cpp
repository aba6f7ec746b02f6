// The mixed-precision contract of the ops on a GPU (autograd/ops.h: bf16 activations, f32
// parameters, residual stream and reductions): what breaks it is a clear error naming the op.
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

class MixedPrecisionCuda : public CudaTest {};

TEST_F(MixedPrecisionCuda, ContractErrors) {
  Generator gen(seed_);
  Tensor x = uniform({2, 5, 8}, -1, 1, gen, DType::bf16, gpu_);
  expect_error(
      [&] {
        causal_conv1d(x, zeros({8, 4}, DType::bf16, gpu_), Tensor(), true);
      },
      {"causal_conv1d", "weight", "bf16[8, 4]", "f32"});
  expect_error(
      [&] {
        causal_conv1d(x, zeros({8, 5}, DType::f32, gpu_), Tensor(), true);
      },
      {"causal_conv1d", "widths 1 to 4", "[8, 5]"});
  expect_error(
      [&] {
        add_rms_norm(x, zeros({2, 5, 8}, DType::bf16, gpu_), ones({8}, DType::f32, gpu_), 1e-5);
      },
      {"add_rms_norm", "residual", "bf16[2, 5, 8]", "f32"});
  expect_error([&] { add_rms_norm(x, Tensor(), ones({8}, DType::f32, gpu_), 1e-5, DType::f64); },
               {"add_rms_norm", "output dtype", "f64"});
  expect_error(
      [&] {
        linear_cross_entropy(zeros({3, 8}, DType::bf16, gpu_), zeros({5, 8}, DType::bf16, gpu_),
                             zeros({3}, DType::i64));
      },
      {"linear_cross_entropy", "weight must be f32", "bf16[5, 8]"});
}

}  // namespace
