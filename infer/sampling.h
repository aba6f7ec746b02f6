// Sampling the next token from logits, and generation: a prompt through Mamba's recurrent step
// (infer/mamba_step.h), one sampled token at a time.
//
// The distribution a draw comes from, in this order (as Hugging Face's generate applies them):
//   1. temperature: p ∝ exp(logit / temperature); temperature 0 is greedy (the argmax, lowest id
//      on ties, no random draw);
//   2. top_k > 0: only the k largest logits stay (ties broken toward the lower id);
//   3. top_p < 1: only the smallest set of most likely tokens whose probability reaches top_p
//      stays (at least one token);
//   4. renormalize, draw u ~ U[0, 1) from the Generator and take the first token whose cumulative
//      probability (in id order) exceeds u.
// Draws come from core/rng.h's counter-based Generator, so a seed gives the same tokens on every
// machine and thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/rng.h"
#include "layers/mamba.h"

namespace serpent {

struct SamplingOptions {
  double temperature = 1.0;  // 0: greedy
  int64_t top_k = 0;         // 0: off
  double top_p = 1.0;        // 1: off
  uint64_t seed = 0;
};

// Throws serpent::Error naming the option when it is out of range.
void validate(const SamplingOptions& opts);

// The probabilities of each of the n tokens after steps 1-3 (zeros where cut), summing to 1.
std::vector<double> sampling_distribution(const std::vector<double>& logits, const SamplingOptions& opts);

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& opts);
  // A token id in [0, logits.size()).
  int64_t sample(const std::vector<double>& logits);

 private:
  SamplingOptions opts_;
  Generator gen_;
};

struct GenerateOptions {
  int64_t max_new_tokens = 256;
  SamplingOptions sampling;
  int64_t stop_token = -1;  // generation ends when this id is drawn (it is not returned); -1: none
};

// Called with each new token as soon as it is chosen; returning false stops generation.
using TokenCallback = std::function<bool(int64_t token)>;

// Continues `prompt` (at least one id, each in [0, vocab_size)) with up to max_new_tokens ids,
// sampled from the first model.config().vocab_size logits (the padding rows never). Returns the
// new ids, without the prompt. The prompt is prefilled with the full-sequence forward; each new
// token then costs one recurrent step.
std::vector<int64_t> generate(const MambaLM& model, const std::vector<int64_t>& prompt, const GenerateOptions& opts,
                              const TokenCallback& on_token = nullptr);

}  // namespace serpent
