// The recorded graph. Each differentiable op that sees an input requiring a gradient attaches
// one Node to its outputs: the inputs it must send gradients to, and a backward closure that
// owns whatever the op saved. The engine calls the closure once and then drops it, which frees
// the saved tensors as backward proceeds.
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace serpent::autograd {

// Receives one gradient per output (zeros where an output got none) and returns one gradient
// per input; an undefined Tensor means "no gradient for this input".
using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grad_outputs)>;

struct OutputMeta {
  Shape shape;
  DType dtype;
  Device device;
};

struct Node {
  std::string name;
  // Undefined where the input needs no gradient; a leaf as itself; any other input as an edge to
  // the node that produced it, without its storage (the closure holds what backward reads).
  std::vector<Tensor> inputs;
  std::vector<OutputMeta> outputs;
  BackwardFn backward;

  void release() {
    backward = nullptr;
    inputs.clear();
  }
};

// Grad mode is per thread, like PyTorch's: the optimizer, evaluation and generation run with a
// NoGradGuard so that nothing is recorded.
bool grad_enabled();

// Sets grad mode for its scope and restores the previous mode when it ends.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled);
  ~GradModeGuard();
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

class NoGradGuard : public GradModeGuard {
 public:
  NoGradGuard() : GradModeGuard(false) {}
};

// Turns grad mode back on inside a backward closure (the engine runs closures with it off), for
// a closure that records and differentiates a graph of its own (autograd/checkpoint.h).
class EnableGradGuard : public GradModeGuard {
 public:
  EnableGradGuard() : GradModeGuard(true) {}
};

bool any_requires_grad(std::initializer_list<Tensor> inputs);

// Attaches a node named `name` to `outputs` when grad mode is on and any input requires a
// gradient. `inputs` are in the order the backward closure returns gradients for them.
void record(const char* name, std::vector<Tensor*> outputs, std::vector<Tensor> inputs, BackwardFn backward);

inline void record(const char* name, Tensor& output, std::vector<Tensor> inputs, BackwardFn backward) {
  record(name, std::vector<Tensor*>{&output}, std::move(inputs), std::move(backward));
}

}  // namespace serpent::autograd
