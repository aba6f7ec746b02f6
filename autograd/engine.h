// The backward engine: walks the recorded graph from the roots in reverse topological order,
// sums the gradients of tensors used more than once, and accumulates into leaves' .grad.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace serpent::autograd {

// grad_outputs[i] may be undefined for a one-element root (it then gets 1).
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_outputs, bool retain_graph = false);

// One root, as PyTorch's loss.backward(): core/ sits below autograd/, so the tensor has no
// backward method of its own.
void backward(const Tensor& root, const Tensor& grad_output = Tensor(), bool retain_graph = false);

}  // namespace serpent::autograd
