// cross_entropy: the gradcheck with ignored targets and an explicit ignore index. Its f32 CPU
// kernel is checked against f64 in test_causal_conv1d.cpp (FloatConvNormAndLossMatchDouble), its
// argument checks in autograd/test_checks.cpp; the fused head is test_linear_cross_entropy.cpp.
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(CrossEntropy, GradcheckWithIgnoredTargets) {
  Generator gen(19);
  Tensor logits = leaf({6, 11}, gen, -3, 3);
  Tensor targets = from_vector<int64_t>({3, -100, 0, 10, 5, -100}, {6});
  expect_gradcheck([targets](const std::vector<Tensor>& in) { return cross_entropy(in[0], targets); }, {logits});
  Tensor t7 = from_vector<int32_t>({1, 7, 7, 0, 2, 7}, {6});
  expect_gradcheck([t7](const std::vector<Tensor>& in) { return cross_entropy(in[0], t7, 7); }, {logits});
}

}  // namespace
