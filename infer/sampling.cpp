#include "infer/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/creation.h"
#include "infer/mamba_step.h"

namespace serpent {

namespace {

// Token ids ordered by logit, largest first, lower id first on ties.
std::vector<int64_t> by_logit(const std::vector<double>& logits) {
  std::vector<int64_t> order(logits.size());
  std::iota(order.begin(), order.end(), int64_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return logits[size_t(a)] > logits[size_t(b)]; });
  return order;
}

int64_t argmax(const std::vector<double>& logits) {
  return int64_t(std::max_element(logits.begin(), logits.end()) - logits.begin());  // first of the maxima
}

}  // namespace

void validate(const SamplingOptions& opts) {
  SERPENT_CHECK(std::isfinite(opts.temperature) && opts.temperature >= 0,
                "sampling: temperature must be >= 0 (0 is greedy), got ", opts.temperature);
  SERPENT_CHECK(opts.top_k >= 0, "sampling: top_k must be >= 0 (0 turns it off), got ", opts.top_k);
  SERPENT_CHECK(opts.top_p > 0 && opts.top_p <= 1, "sampling: top_p must be in (0, 1] (1 turns it off), got ",
                opts.top_p);
}

std::vector<double> sampling_distribution(const std::vector<double>& logits, const SamplingOptions& opts) {
  validate(opts);
  SERPENT_CHECK(!logits.empty(), "sampling: no logits to sample from");
  for (size_t i = 0; i < logits.size(); ++i)
    SERPENT_CHECK(!std::isnan(logits[i]) && logits[i] != INFINITY, "sampling: the logit of token ", i, " is ",
                  logits[i], "; expected a finite number (or -inf to exclude the token)");
  SERPENT_CHECK(std::isfinite(logits[size_t(argmax(logits))]), "sampling: every logit is -inf; nothing to sample");
  std::vector<double> p(logits.size(), 0.0);
  if (opts.temperature == 0) {
    p[size_t(argmax(logits))] = 1.0;
    return p;
  }
  std::vector<int64_t> order = by_logit(logits);
  const size_t keep_k = opts.top_k > 0 ? std::min(order.size(), size_t(opts.top_k)) : order.size();
  order.resize(keep_k);
  // Softmax over the kept tokens, shifted by the largest logit for range.
  const double top = logits[size_t(order[0])];
  double total = 0;
  for (int64_t id : order) total += p[size_t(id)] = std::exp((logits[size_t(id)] - top) / opts.temperature);
  size_t keep_p = order.size();
  if (opts.top_p < 1) {
    double mass = 0;
    for (size_t i = 0; i < order.size(); ++i) {
      mass += p[size_t(order[i])] / total;
      if (mass >= opts.top_p) {
        keep_p = i + 1;
        break;
      }
    }
  }
  double kept = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    double& v = p[size_t(order[i])];
    if (i >= keep_p) v = 0;
    kept += v;
  }
  for (double& v : p) v /= kept;
  return p;
}

Sampler::Sampler(const SamplingOptions& opts) : opts_(opts), gen_(opts.seed) {
  validate(opts);
}

int64_t Sampler::sample(const std::vector<double>& logits) {
  const std::vector<double> p = sampling_distribution(logits, opts_);
  if (opts_.temperature == 0) return argmax(logits);
  const double u = gen_.uniform();
  double cumulative = 0;
  int64_t last = -1;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) continue;
    cumulative += p[i];
    last = int64_t(i);
    if (cumulative > u) return last;
  }
  return last;  // u within rounding of 1: the last token with mass
}

std::vector<int64_t> generate(const MambaLM& model, const std::vector<int64_t>& prompt, const GenerateOptions& opts,
                              const TokenCallback& on_token) {
  const int64_t V = model.config().vocab_size;
  SERPENT_CHECK(!prompt.empty(), "generate: the prompt is empty; give at least one token");
  for (size_t i = 0; i < prompt.size(); ++i)
    SERPENT_CHECK(prompt[i] >= 0 && prompt[i] < V, "generate: prompt token id ", prompt[i], " at position ", i,
                  " is outside the vocabulary [0, ", V, ")");
  SERPENT_CHECK(opts.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got ", opts.max_new_tokens);
  Sampler sampler(opts.sampling);
  std::vector<int64_t> out;
  if (opts.max_new_tokens == 0) return out;

  MambaInferenceState state;
  Tensor logits = prefill(model, from_vector(prompt, {1, int64_t(prompt.size())}), state);  // (1, V_pad)
  while (true) {
    std::vector<double> row = logits.to_vector<double>();
    row.resize(size_t(V));  // the padding rows are not tokens
    const int64_t token = sampler.sample(row);
    if (token == opts.stop_token) break;
    out.push_back(token);
    if (on_token && !on_token(token)) break;
    if (int64_t(out.size()) == opts.max_new_tokens) break;
    logits = step(model, from_vector(std::vector<int64_t>{token}, {1}), state);
  }
  return out;
}

}  // namespace serpent
