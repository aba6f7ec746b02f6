// Mamba's recurrent step (infer/mamba_step.h): the full-sequence forward's logits at every
// position, one token at a time and after a prefill of any length, in f64 and f32, recording no
// graph; and the state's errors.
#include <cmath>
#include <string>

#include "infer/mamba_step.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

Tensor random_ids(int64_t B, int64_t L, int64_t V, Generator& gen) {
  std::vector<int64_t> ids(size_t(B * L));
  for (auto& t : ids) t = int64_t(gen.uniform() * double(V));
  return from_vector(ids, {B, L});
}

// Column t of ids (B, L) as (B).
Tensor column(const Tensor& ids, int64_t t) {
  std::vector<int64_t> all = ids.to_vector<int64_t>(), col;
  const int64_t B = ids.size(0), L = ids.size(1);
  for (int64_t b = 0; b < B; ++b) col.push_back(all[size_t(b * L + t)]);
  return from_vector(col, {B});
}

// Columns [0, k) of ids (B, L).
Tensor prefix(const Tensor& ids, int64_t k) {
  std::vector<int64_t> all = ids.to_vector<int64_t>(), out;
  const int64_t B = ids.size(0), L = ids.size(1);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < k; ++t) out.push_back(all[size_t(b * L + t)]);
  return from_vector(out, {B, k});
}

// Largest |step - full[:, t, :]| relative to the largest |full[:, t, :]|.
double position_error(const Tensor& step_logits, const Tensor& full, int64_t t) {
  const int64_t B = full.size(0), L = full.size(1), V = full.size(2);
  EXPECT_EQ(step_logits.shape(), Shape({B, V}));
  std::vector<double> s = step_logits.to_vector<double>(), f = full.to_vector<double>();
  double err = 0, scale = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t v = 0; v < V; ++v) {
      const double ref = f[size_t((b * L + t) * V + v)];
      err = std::max(err, std::fabs(s[size_t(b * V + v)] - ref));
      scale = std::max(scale, std::fabs(ref));
    }
  return err / scale;
}

TEST(MambaStep, StepByStepEqualsFullForwardAtEveryPosition) {
  auto model = random_model(odd_config(), DType::f64, 11);
  Generator gen(3);
  const int64_t B = 3, L = 11;
  Tensor ids = random_ids(B, L, 13, gen);
  Tensor full = model->forward(ids);  // (B, L, V_pad)
  MambaInferenceState state = init_inference_state(*model, B);
  for (int64_t t = 0; t < L; ++t) {
    Tensor logits = step(*model, column(ids, t), state);
    EXPECT_LE(position_error(logits, full, t), 1e-12) << "position " << t;
  }
  EXPECT_EQ(state.tokens, L);
}

TEST(MambaStep, PrefillThenStepsEqualFullForward) {
  auto model = random_model(odd_config(), DType::f64, 12);
  Generator gen(4);
  const int64_t B = 2, L = 9;
  Tensor ids = random_ids(B, L, 13, gen);
  Tensor full = model->forward(ids);
  // Prompts shorter than the conv window (1, 2), exactly as long (3) and longer (6).
  for (int64_t k : {1, 2, 3, 6}) {
    SCOPED_TRACE("prompt of " + std::to_string(k));
    MambaInferenceState state;
    Tensor last = prefill(*model, prefix(ids, k), state);
    EXPECT_LE(position_error(last, full, k - 1), 1e-12);
    EXPECT_EQ(state.tokens, k);
    ASSERT_EQ(state.layers.size(), 3u);
    EXPECT_EQ(state.layers[0].conv.shape(), Shape({B, 20, 3}));
    EXPECT_EQ(state.layers[0].ssm.shape(), Shape({B, 20, 5}));
    for (int64_t t = k; t < L; ++t) EXPECT_LE(position_error(step(*model, column(ids, t), state), full, t), 1e-12);
  }
}

TEST(MambaStep, StepWorksInFloat32AndWithoutConvBias) {
  MambaConfig cfg = odd_config();
  cfg.conv_bias = false;
  cfg.dt_rank = 0;  // auto
  auto model = random_model(cfg, DType::f32, 13);
  Generator gen(5);
  Tensor ids = random_ids(2, 7, 13, gen);
  Tensor full = model->forward(ids);
  MambaInferenceState state;
  EXPECT_LE(position_error(prefill(*model, prefix(ids, 2), state), full, 1), 1e-5);
  for (int64_t t = 2; t < 7; ++t) EXPECT_LE(position_error(step(*model, column(ids, t), state), full, t), 1e-5);
}

TEST(MambaStep, StepRecordsNoGraph) {
  auto model = random_model(odd_config(), DType::f64, 14);
  MambaInferenceState state = init_inference_state(*model, 1);
  Tensor logits = step(*model, from_vector<int64_t>({4}, {1}), state);
  EXPECT_FALSE(logits.requires_grad());
  EXPECT_TRUE(logits.is_leaf());
}

TEST(MambaStep, StateErrors) {
  auto model = random_model(odd_config(), DType::f64, 15);
  MambaInferenceState state = init_inference_state(*model, 2);
  expect_error(
      [&] {
        step(*model, from_vector<int64_t>({1, 2, 3}, {3}), state);
      },
      {"step", "one token id per sequence", "(2)", "[3]"});
  expect_error([&] { prefill(*model, from_vector<int64_t>({1, 2}, {2}), state); }, {"prefill", "(B, L)"});
  expect_error([] { init_inference_state(*random_model(odd_config(), DType::f64, 1), 0); }, {"batch", "0"});
}

}  // namespace
