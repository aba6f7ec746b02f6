// Validation loss and perplexity: the token-weighted mean negative log-likelihood of the model
// over a validation split, sum(NLL of every target) / (number of targets), and exp of it. Used by
// the trainer's periodic validation and by `serpent eval`.
#pragma once

#include <cstdint>
#include <functional>

#include "data/loader.h"
#include "layers/mamba.h"

namespace serpent {

struct EvalResult {
  double loss = 0;     // nats per target token
  double ppl = 0;      // exp(loss)
  int64_t tokens = 0;  // targets scored (padding excluded)
  int64_t batches = 0;
};

// Called after each batch with (batches done, batches planned).
using EvalProgress = std::function<void(int64_t done, int64_t total)>;

// The sums behind evaluate(): the NLL of every scored target, their count and the batches read.
// Zero targets is not an error here (a rank of a data-parallel job may have no validation windows).
struct EvalSums {
  double nll = 0;
  int64_t tokens = 0;
  int64_t batches = 0;
};
EvalSums evaluate_sums(const MambaLM& model, ValLoader& val, int64_t max_batches, Device device,
                       const EvalProgress& progress = nullptr);

// Scores up to max_batches batches of `val` (0: all of them, i.e. every target of the split
// once), starting from the split's beginning, without recording a graph. Batches are moved to
// `device` (the model's). Throws when there is nothing to score.
EvalResult evaluate(const MambaLM& model, ValLoader& val, int64_t max_batches, Device device,
                    const EvalProgress& progress = nullptr);

}  // namespace serpent
