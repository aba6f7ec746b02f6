// Generation: Mamba's recurrent step gives the full-sequence forward's logits at every position,
// the prefill leaves the right states, sampling draws from the distribution that temperature,
// top-k and top-p define, and a seed fixes the output.
#include <cmath>
#include <map>

#include "autograd/node.h"
#include "helpers.h"
#include "infer/mamba_step.h"
#include "infer/sampling.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

// Odd sizes everywhere, so that no two dimensions can be confused.
MambaConfig odd_config() {
  MambaConfig c;
  c.d_model = 10;
  c.n_layer = 3;
  c.vocab_size = 13;  // padded to 16
  c.d_state = 5;
  c.d_conv = 3;
  c.expand = 2;  // d_inner 20
  c.dt_rank = 3;
  return c;
}

// A model whose every parameter is random (A_log and D included, which init makes regular).
std::unique_ptr<MambaLM> random_model(const MambaConfig& cfg, DType dtype, uint64_t seed) {
  Generator gen(seed);
  auto model = std::make_unique<MambaLM>(cfg, gen, dtype);
  autograd::NoGradGuard no_grad;
  for (auto& [name, p] : model->named_parameters()) {
    Tensor noise = uniform(p.shape(), -0.3, 0.3, gen, dtype);
    add_(p, noise);
  }
  return model;
}

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

TEST(Generation, StepByStepEqualsFullForwardAtEveryPosition) {
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

TEST(Generation, PrefillThenStepsEqualFullForward) {
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

TEST(Generation, StepWorksInFloat32AndWithoutConvBias) {
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

TEST(Generation, StepRecordsNoGraph) {
  auto model = random_model(odd_config(), DType::f64, 14);
  MambaInferenceState state = init_inference_state(*model, 1);
  Tensor logits = step(*model, from_vector<int64_t>({4}, {1}), state);
  EXPECT_FALSE(logits.requires_grad());
  EXPECT_TRUE(logits.is_leaf());
}

TEST(Generation, StateErrors) {
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

// ---- sampling ----

std::vector<double> softmax(const std::vector<double>& x, double temperature) {
  std::vector<double> p(x.size());
  double total = 0;
  for (size_t i = 0; i < x.size(); ++i) total += p[i] = std::exp(x[i] / temperature);
  for (double& v : p) v /= total;
  return p;
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "token " << i;
}

// Frequencies of n draws.
std::vector<double> frequencies(const std::vector<double>& logits, const SamplingOptions& opts, int n) {
  Sampler sampler(opts);
  std::vector<double> f(logits.size(), 0.0);
  for (int i = 0; i < n; ++i) f[size_t(sampler.sample(logits))] += 1.0 / n;
  return f;
}

const std::vector<double> kLogits = {1.0, 2.0, 0.5, 3.0, -1.0, 2.5};

TEST(Sampling, TemperatureAndTopK) {
  SamplingOptions o;
  o.temperature = 0.7;
  o.top_k = 3;  // tokens 3, 5, 1
  const double a = std::exp(3.0 / 0.7), b = std::exp(2.5 / 0.7), c = std::exp(2.0 / 0.7), s = a + b + c;
  const std::vector<double> want = {0, c / s, 0, a / s, 0, b / s};
  expect_close(sampling_distribution(kLogits, o), want, 1e-14);
  o.seed = 7;
  expect_close(frequencies(kLogits, o, 20000), want, 0.015);
  o.top_k = 0;
  expect_close(sampling_distribution(kLogits, o), softmax(kLogits, 0.7), 1e-14);
  o.top_k = 100;  // more than the vocabulary: no cut
  expect_close(sampling_distribution(kLogits, o), softmax(kLogits, 0.7), 1e-14);
}

TEST(Sampling, TopP) {
  // Logits log(p) give exactly the probabilities p at temperature 1.
  const std::vector<double> p = {0.1, 0.4, 0.05, 0.3, 0.15};
  std::vector<double> logits;
  for (double v : p) logits.push_back(std::log(v));
  SamplingOptions o;
  o.top_p = 0.6;  // 0.4, then 0.3 reaches 0.7 >= 0.6
  expect_close(sampling_distribution(logits, o), {0, 0.4 / 0.7, 0, 0.3 / 0.7, 0}, 1e-14);
  o.seed = 9;
  expect_close(frequencies(logits, o, 20000), {0, 0.4 / 0.7, 0, 0.3 / 0.7, 0}, 0.015);
  o.top_p = 0.75;  // 0.4 + 0.3 + 0.15
  expect_close(sampling_distribution(logits, o), {0, 0.4 / 0.85, 0, 0.3 / 0.85, 0.15 / 0.85}, 1e-14);
  o.top_p = 0.3;  // the most likely token alone
  expect_close(sampling_distribution(logits, o), {0, 1, 0, 0, 0}, 0);
  o.top_p = 0.5;  // after top-k 2: 4/7 of the mass on token 1 already reaches 0.5
  o.top_k = 2;
  expect_close(sampling_distribution(logits, o), {0, 1, 0, 0, 0}, 0);
  o.top_p = 0.6;
  expect_close(sampling_distribution(logits, o), {0, 4.0 / 7, 0, 3.0 / 7, 0}, 1e-14);
}

TEST(Sampling, GreedyAtTemperatureZero) {
  SamplingOptions o;
  o.temperature = 0;
  o.top_k = 2;
  expect_close(sampling_distribution(kLogits, o), {0, 0, 0, 1, 0, 0}, 0);
  Sampler s(o);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(s.sample(kLogits), 3);
  EXPECT_EQ(s.sample({2.0, 5.0, 5.0}), 1);  // ties: the lower id
}

TEST(Sampling, SameSeedSameDraws) {
  SamplingOptions o;
  o.seed = 42;
  Sampler a(o), b(o);
  std::vector<int64_t> da, db, dc;
  for (int i = 0; i < 50; ++i) {
    da.push_back(a.sample(kLogits));
    db.push_back(b.sample(kLogits));
  }
  EXPECT_EQ(da, db);
  o.seed = 43;
  Sampler c(o);
  for (int i = 0; i < 50; ++i) dc.push_back(c.sample(kLogits));
  EXPECT_NE(da, dc);
}

TEST(Sampling, BadOptionsAndLogits) {
  SamplingOptions o;
  o.temperature = -1;
  expect_error([&] { Sampler s(o); }, {"temperature", ">= 0", "-1"});
  o = {};
  o.top_p = 0;
  expect_error([&] { Sampler s(o); }, {"top_p", "(0, 1]"});
  o.top_p = 1.5;
  expect_error([&] { Sampler s(o); }, {"top_p", "1.5"});
  o = {};
  o.top_k = -2;
  expect_error([&] { Sampler s(o); }, {"top_k", "-2"});
  expect_error([] { sampling_distribution({1.0, NAN}, {}); }, {"token 1", "nan"});
  expect_error([] { sampling_distribution({-INFINITY, -INFINITY}, {}); }, {"every logit is -inf"});
  // -inf excludes a token.
  expect_close(sampling_distribution({0.0, -INFINITY, 0.0}, {}), {0.5, 0, 0.5}, 1e-15);
}

// ---- generate ----

TEST(Generate, GreedyFollowsTheFullForwardArgmax) {
  auto model = random_model(odd_config(), DType::f64, 21);
  std::vector<int64_t> seq = {3, 7, 1, 12};
  GenerateOptions o;
  o.max_new_tokens = 8;
  o.sampling.temperature = 0;
  const std::vector<int64_t> got = generate(*model, seq, o);
  ASSERT_EQ(got.size(), 8u);
  // Independently: the whole sequence through the full forward each time, argmax over the real vocabulary.
  for (int64_t want_index = 0; want_index < 8; ++want_index) {
    Tensor logits = model->forward(from_vector(seq, {1, int64_t(seq.size())}));
    std::vector<double> all = logits.to_vector<double>();
    const size_t last = (seq.size() - 1) * 16;
    int64_t best = 0;
    for (int64_t v = 1; v < 13; ++v)
      if (all[last + size_t(v)] > all[last + size_t(best)]) best = v;
    EXPECT_EQ(got[size_t(want_index)], best) << "token " << want_index;
    seq.push_back(best);
  }
}

TEST(Generate, SameSeedSameOutputAndStreaming) {
  auto model = random_model(odd_config(), DType::f32, 22);
  GenerateOptions o;
  o.max_new_tokens = 24;
  o.sampling.seed = 5;
  o.sampling.top_k = 8;
  o.sampling.top_p = 0.9;
  std::vector<int64_t> streamed;
  const std::vector<int64_t> a = generate(*model, {1, 2, 3}, o, [&](int64_t t) {
    streamed.push_back(t);
    return true;
  });
  EXPECT_EQ(a.size(), 24u);
  EXPECT_EQ(streamed, a);
  for (int64_t t : a) EXPECT_TRUE(t >= 0 && t < 13) << t;  // never a padding id
  EXPECT_EQ(generate(*model, {1, 2, 3}, o), a);
  o.sampling.seed = 6;
  EXPECT_NE(generate(*model, {1, 2, 3}, o), a);
  // The callback can stop early; a stop token ends generation without being returned.
  o.sampling.seed = 5;
  int calls = 0;
  EXPECT_EQ(generate(*model, {1, 2, 3}, o, [&](int64_t) { return ++calls < 4; }),
            std::vector<int64_t>(a.begin(), a.begin() + 4));
  o.stop_token = a[5];
  const auto first_stop = std::find(a.begin(), a.end(), a[5]);
  EXPECT_EQ(generate(*model, {1, 2, 3}, o), std::vector<int64_t>(a.begin(), first_stop));
}

TEST(Generate, BadPrompts) {
  auto model = random_model(odd_config(), DType::f64, 23);
  GenerateOptions o;
  expect_error([&] { generate(*model, {}, o); }, {"prompt is empty"});
  expect_error([&] { generate(*model, {1, 13}, o); }, {"token id 13", "position 1", "[0, 13)"});
  o.max_new_tokens = 0;
  EXPECT_TRUE(generate(*model, {1}, o).empty());
}

}  // namespace
