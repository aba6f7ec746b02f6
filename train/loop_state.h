// The training loop's own state: everything besides the parameters and the optimizer's moments
// that a run needs to continue exactly where it stopped. It has one serialization (its fields in
// a checkpoint's /train group and /optim/step, io/checkpoint.h), used three ways: a checkpoint is
// written from it, a resume restores it from a checkpoint, and rank 0 hands it to the other ranks
// in the same form (encode / decode carry that checkpoint form as bytes, exactly).
#pragma once

#include <cstdint>
#include <string>

#include "data/loader.h"
#include "io/checkpoint.h"

namespace serpent {

struct LoopState {
  int64_t step = 0;         // optimizer steps completed
  int64_t tokens_seen = 0;  // training tokens those steps consumed, all ranks together
  uint64_t rng_seed = 0;    // the run's Generator (core/rng.h)
  uint64_t rng_offset = 0;
  LoaderState loader;         // the training data loader's position (one for all ranks)
  int64_t optim_step = 0;     // updates the optimizer applied (skipped steps apply none)
  int64_t nonfinite_run = 0;  // consecutive skipped (non-finite) steps up to now
  // The logging interval in progress: sums over its finite steps, and its skipped steps.
  double interval_loss_sum = 0, interval_grad_norm_sum = 0;
  int64_t interval_steps = 0, interval_skipped = 0;

  // Into / from a checkpoint's train state and optimizer step; `path` names the checkpoint in
  // errors (a loader position that is not the one of a single-loader run).
  void save_to(Checkpoint& c) const;
  static LoopState load_from(const Checkpoint& c, const std::string& path);

  // The checkpoint form as bytes, for the broadcast from rank 0: decode(encode()) is bitwise
  // the same state.
  std::string encode() const;
  static LoopState decode(const std::string& bytes);

  bool operator==(const LoopState&) const = default;
};

}  // namespace serpent
