// Sampling and generation (infer/sampling.h): the distribution that temperature, top-k and top-p
// define (and the frequencies of draws from it), greedy decoding, a seed fixing the draws; then
// generate() against the full-sequence forward's argmax, streaming, stop tokens and bad prompts.
#include <algorithm>
#include <cmath>

#include "infer/sampling.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

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
