// Module: a node in a tree of named parameters. Children and parameters are registered by
// pointer to members, so a module must stay where it was built (modules are neither copied nor
// moved; hold them by value inside their parent or by unique_ptr). Names join with '.', exactly as
// PyTorch's state_dict does.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace serpent {

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter of this module and its children, in registration order.
  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  int64_t num_parameters() const;

  // The parameters as a state dict (the same tensors, not copies).
  NamedTensors state_dict() const { return named_parameters(); }
  // Copies values into the parameters, converting dtype and device. Every parameter must be
  // present with its exact shape; with strict, extra names are errors too.
  void load_state_dict(const NamedTensors& state, bool strict = true);

  // Moves every parameter (as a fresh leaf that requires a gradient) to a device or dtype.
  void to(Device device);
  void to(DType dtype);
  void zero_grad();

 protected:
  Tensor& register_parameter(const std::string& name, Tensor* slot, Tensor value);
  void register_module(const std::string& name, Module* child);

 private:
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor*>>& out) const;
  std::vector<std::pair<std::string, Tensor*>> slots() const;

  std::vector<std::pair<std::string, Tensor*>> params_;
  std::vector<std::pair<std::string, Module*>> children_;
};

}  // namespace serpent
