#include "layers/module.h"

#include <set>

namespace serpent {

Tensor& Module::register_parameter(const std::string& name, Tensor* slot, Tensor value) {
  *slot = std::move(value);
  slot->set_requires_grad(true);
  params_.emplace_back(name, slot);
  return *slot;
}

void Module::register_module(const std::string& name, Module* child) {
  children_.emplace_back(name, child);
}

void Module::collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor*>>& out) const {
  for (const auto& [name, slot] : params_) out.emplace_back(prefix + name, slot);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

std::vector<std::pair<std::string, Tensor*>> Module::slots() const {
  std::vector<std::pair<std::string, Tensor*>> out;
  collect("", out);
  return out;
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  for (const auto& [name, slot] : slots()) out.emplace_back(name, *slot);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (const auto& [name, slot] : slots()) out.push_back(*slot);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, slot] : slots()) n += slot->numel();
  return n;
}

void Module::load_state_dict(const NamedTensors& state, bool strict) {
  std::set<std::string> known;
  for (const auto& [name, slot] : slots()) {
    known.insert(name);
    const Tensor* found = nullptr;
    for (const auto& [key, value] : state)
      if (key == name) found = &value;
    SERPENT_CHECK(found, "load_state_dict: missing parameter '", name, "' of shape ", shape_str(slot->shape()));
    SERPENT_CHECK(found->shape() == slot->shape(), "load_state_dict: parameter '", name, "' has shape ",
                  shape_str(found->shape()), " in the state dict but ", shape_str(slot->shape()), " in the model");
    slot->copy_(*found);
  }
  if (!strict) return;
  for (const auto& [key, value] : state)
    SERPENT_CHECK(known.count(key), "load_state_dict: unexpected parameter '", key, "' of shape ",
                  shape_str(value.shape()));
}

void Module::to(Device device) {
  for (const auto& [name, slot] : slots()) {
    if (slot->device() == device) continue;
    *slot = slot->detach().to(device);
    slot->set_requires_grad(true);
  }
}

void Module::to(DType dtype) {
  for (const auto& [name, slot] : slots()) {
    if (slot->dtype() == dtype) continue;
    *slot = slot->detach().to(dtype);
    slot->set_requires_grad(true);
  }
}

void Module::zero_grad() {
  for (const auto& [name, slot] : slots()) slot->zero_grad();
}

}  // namespace serpent
