#include "train/evaluate.h"

#include <cmath>

#include "autograd/node.h"

namespace serpent {

EvalResult evaluate(const MambaLM& model, ValLoader& val, int64_t max_batches, Device device,
                    const EvalProgress& progress) {
  autograd::NoGradGuard no_grad;
  val.reset();
  const int64_t planned = max_batches > 0 ? std::min(max_batches, val.num_batches()) : val.num_batches();
  EvalResult r;
  double nll_sum = 0;
  for (Batch b; r.batches < planned && val.next(b);) {
    // The loss is a mean over the batch's scored targets; weighting it by their count makes the
    // result a mean over tokens, not over batches (the last batches hold padding).
    int64_t count = 0;
    for (int64_t t : b.targets.to_vector<int64_t>()) count += t != -100;
    ++r.batches;
    if (count > 0) {
      const double mean = model.loss(b.inputs.to(device), b.targets.to(device)).item();
      nll_sum += mean * double(count);
      r.tokens += count;
    }
    if (progress) progress(r.batches, planned);
  }
  SERPENT_CHECK(r.tokens > 0, "evaluate: the validation data holds no tokens to score");
  r.loss = nll_sum / double(r.tokens);
  r.ppl = std::exp(r.loss);
  return r;
}

}  // namespace serpent
