// Activation checkpointing (train.recompute: full): run a function without recording its graph,
// keep only its inputs, and run it again inside backward to differentiate it, as
// torch.utils.checkpoint does. Memory drops from everything the function's ops save to its
// inputs, for one more forward of the function per backward.
//
// The function must compute the same values when it runs again (no randomness, no state it
// changes). The parameters it uses are leaves of the graph recorded during the recompute, so
// their gradients accumulate into .grad there (and their on_grad_ready hooks fire there, once per
// backward, as in a run without checkpointing); each must be used only inside this function.
#pragma once

#include <functional>
#include <vector>

#include "core/tensor.h"

namespace serpent::autograd {

using CheckpointFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& inputs)>;

// fn(inputs), with the graph kept as described above. Undefined inputs pass through as such.
// When grad mode is off or no input requires a gradient, this is fn(inputs) itself.
std::vector<Tensor> checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs);

}  // namespace serpent::autograd
