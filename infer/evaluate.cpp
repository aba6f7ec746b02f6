#include "infer/evaluate.h"

#include <cmath>

#include "autograd/node.h"

namespace serpent {

EvalSums evaluate_sums(const MambaLM& model, ValLoader& val, int64_t max_batches, Device device,
                       const EvalProgress& progress) {
  autograd::NoGradGuard no_grad;
  val.reset();
  const int64_t planned = max_batches > 0 ? std::min(max_batches, val.num_batches()) : val.num_batches();
  EvalSums s;
  for (Batch b; s.batches < planned && val.next(b);) {
    // The loss is a mean over the batch's scored targets; weighting it by their count makes the
    // result a mean over tokens, not over batches (the last batches hold padding).
    int64_t count = 0;
    for (int64_t t : b.targets.to_vector<int64_t>()) count += t != -100;
    ++s.batches;
    if (count > 0) {
      const double mean = model.loss(b.inputs.to(device), b.targets.to(device)).item();
      s.nll += mean * double(count);
      s.tokens += count;
    }
    if (progress) progress(s.batches, planned);
  }
  return s;
}

EvalResult evaluate(const MambaLM& model, ValLoader& val, int64_t max_batches, Device device,
                    const EvalProgress& progress) {
  const EvalSums s = evaluate_sums(model, val, max_batches, device, progress);
  SERPENT_CHECK(s.tokens > 0, "evaluate: the validation data holds no tokens to score");
  EvalResult r;
  r.tokens = s.tokens;
  r.batches = s.batches;
  r.loss = s.nll / double(s.tokens);
  r.ppl = std::exp(r.loss);
  return r;
}

}  // namespace serpent
