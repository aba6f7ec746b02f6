// What a training run needs in memory, estimated from its config before anything is allocated,
// and the check that refuses a run that cannot fit (docs/TRAINING.md, "Memory").
//
// The count follows what the code keeps (docs/DESIGN.md): per parameter its f32 (f64) weight,
// gradient (where alive at the forward's peak: in the data-parallel buckets, or made by an
// earlier micro-batch of the step) and two AdamW moments (bf16 with
// optim.state_dtype bf16; sharded over the ranks with dist.zero1), plus a bf16 copy under bf16
// mixed precision; per token of one micro-batch, what the backward closures keep in each layer
// (the f32 residual stream, the norm output, x, z, the conv output u, the scan output y,
// dt_low, B, C, and on a GPU the scan's f32 state checkpoints; with train.recompute full only the
// block's two inputs), and the largest transient of backward (one layer's activation gradients,
// plus its recomputed activations under recompute) and of the loss (a chunk of logits).
#pragma once

#include <cstdint>
#include <string>

#include "core/device.h"
#include "train/config.h"

namespace serpent {

struct MemoryEstimate {
  int64_t weights = 0;       // parameters, and their bf16 copies under mixed precision
  int64_t gradients = 0;     // one full-size gradient per parameter, where alive at the forward's peak
  int64_t optimizer = 0;     // AdamW's two moments (this rank's share)
  int64_t activations = 0;   // kept for backward over one micro-batch
  int64_t transient = 0;     // the largest working set on top: one layer's backward, the logits chunk
  int64_t snapshot = 0;      // on the cpu with checkpoint.async: the host copy of weights and moments
  int64_t per_sequence = 0;  // what each sequence of the micro-batch adds to activations + transient
  int64_t total() const { return weights + gradients + optimizer + activations + transient + snapshot; }
};

MemoryEstimate estimate_training_memory(const Config& cfg, Device device, int world_size);

// Throws serpent::Error when the estimate exceeds what the device has free (core/memory.h): one
// line with both numbers, what sets the limit, and the keys that would make the run fit.
void check_training_memory(const Config& cfg, Device device, int world_size);

}  // namespace serpent
