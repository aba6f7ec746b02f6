#include "autograd/engine.h"

#include <unordered_map>

#include "autograd/node.h"
#include "autograd/ops.h"

namespace serpent::autograd {

namespace {
thread_local bool t_grad_enabled = true;
}

bool grad_enabled() {
  return t_grad_enabled;
}

GradModeGuard::GradModeGuard(bool enabled) : previous_(t_grad_enabled) {
  t_grad_enabled = enabled;
}
GradModeGuard::~GradModeGuard() {
  t_grad_enabled = previous_;
}

bool any_requires_grad(std::initializer_list<Tensor> inputs) {
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

namespace {

// What the graph keeps of a non-leaf input: the node that produced it, which of that node's
// outputs it is, its shape and dtype, and not its storage. The backward closures hold the tensors
// they read; an activation that no backward reads (a mixer's output, which the next norm only
// adds) is freed as soon as the forward is done with it.
Tensor edge_of(const Tensor& t) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = t.shape();
  impl->dtype = t.dtype();
  impl->requires_grad = true;
  impl->grad_fn = t.impl().grad_fn;
  impl->output_nr = t.impl().output_nr;
  return Tensor(std::move(impl));
}

}  // namespace

void record(const char* name, std::vector<Tensor*> outputs, std::vector<Tensor> inputs, BackwardFn backward) {
  if (!t_grad_enabled) return;
  bool any = false;
  for (Tensor& t : inputs) {
    if (t.defined() && t.requires_grad()) {
      any = true;
      if (t.impl().grad_fn) t = edge_of(t);
    } else {
      t = Tensor();
    }
  }
  if (!any) return;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor& out = *outputs[i];
    node->outputs.push_back({out.shape(), out.dtype(), out.device()});
    TensorImpl& impl = out.impl();
    impl.requires_grad = true;
    impl.grad_fn = node;
    impl.output_nr = int(i);
  }
}

namespace {

void accumulate(Tensor& slot, const Tensor& g) {
  if (!slot.defined())
    slot = g;
  else
    slot = add(slot, g);
}

void accumulate_into_leaf(TensorImpl& leaf, const Tensor& g) {
  SERPENT_CHECK(g.shape() == leaf.shape, "backward: gradient of shape ", shape_str(g.shape()), " for a leaf of shape ",
                shape_str(leaf.shape));
  if (!leaf.grad) {
    // The gradient becomes .grad as it is when nothing else holds it or its memory (a product
    // written for this leaf alone, as a weight's gradient is); otherwise a copy, since the same
    // tensor may be handed to several inputs (add's backward) and optimizers modify .grad in place.
    const bool sole = g.impl_ptr().use_count() == 1 && g.impl().storage.use_count() == 1;
    Tensor own = g.dtype() != leaf.dtype ? g.to(leaf.dtype) : sole ? g : g.clone();
    leaf.grad = own.impl_ptr();
  } else {
    Tensor existing(leaf.grad);
    add_(existing, g);
  }
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_outputs, bool retain_graph) {
  SERPENT_CHECK(roots.size() == grad_outputs.size(), "backward: ", roots.size(), " roots but ", grad_outputs.size(),
                " gradients");
  NoGradGuard no_grad;

  // Discover the graph: dependency counts of nodes (edges from other nodes) and of leaves.
  std::unordered_map<Node*, int> deps;
  std::unordered_map<TensorImpl*, int> leaf_uses;
  std::vector<Node*> stack;
  // Owning references: a node is otherwise kept alive only by the tensors it produced, which
  // its consumers release as backward proceeds. Each entry is dropped once its node has run.
  std::unordered_map<Node*, std::shared_ptr<Node>> alive;
  for (const Tensor& r : roots) {
    SERPENT_CHECK(r.requires_grad(), "backward: the root ", r.str(), " does not require a gradient");
    if (Node* n = r.grad_fn().get(); n && alive.emplace(n, r.grad_fn()).second) stack.push_back(n);
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    SERPENT_CHECK(n->backward, "backward: the graph through '", n->name,
                  "' was already freed by an earlier backward (pass retain_graph to keep it)");
    for (const Tensor& in : n->inputs) {
      if (!in.defined()) continue;
      if (Node* next = in.grad_fn().get()) {
        ++deps[next];
        if (alive.emplace(next, in.grad_fn()).second) stack.push_back(next);
      } else {
        ++leaf_uses[&in.impl()];
      }
    }
  }

  std::unordered_map<Node*, std::vector<Tensor>> pending;
  std::vector<Node*> ready;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    Tensor g = grad_outputs[i];
    if (!g.defined()) {
      SERPENT_CHECK(r.numel() == 1, "backward: a gradient is needed for the non-scalar root ", r.str());
      g = Tensor::empty(r.shape(), r.dtype(), r.device());
      g.fill_(1.0);
    }
    SERPENT_CHECK(g.shape() == r.shape(), "backward: gradient ", g.str(), " for root ", r.str());
    if (!r.grad_fn()) {
      accumulate_into_leaf(r.impl(), g);
      continue;
    }
    Node* n = r.grad_fn().get();
    auto& slots = pending[n];
    slots.resize(n->outputs.size());
    accumulate(slots[size_t(r.impl().output_nr)], g);
  }
  for (auto& [n, _] : pending)
    if (deps[n] == 0) ready.push_back(n);

  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    std::vector<Tensor> grads = std::move(pending[n]);
    pending.erase(n);
    grads.resize(n->outputs.size());
    for (size_t i = 0; i < grads.size(); ++i) {
      if (grads[i].defined()) continue;
      const OutputMeta& m = n->outputs[i];
      grads[i] = Tensor::empty(m.shape, m.dtype, m.device);
      grads[i].zero_();
    }
    std::vector<Tensor> input_grads = n->backward(grads);
    SERPENT_CHECK(input_grads.size() == n->inputs.size(), "backward of '", n->name, "' returned ", input_grads.size(),
                  " gradients for ", n->inputs.size(), " inputs");
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const Tensor& in = n->inputs[i];
      if (!in.defined()) continue;
      const Tensor& g = input_grads[i];
      if (Node* next = in.grad_fn().get()) {
        if (g.defined()) {
          SERPENT_CHECK(g.shape() == in.shape(), "backward of '", n->name, "': gradient ", g.str(), " for input ", i,
                        " of shape ", shape_str(in.shape()));
          auto& slots = pending[next];
          slots.resize(next->outputs.size());
          accumulate(slots[size_t(in.impl().output_nr)], g);
        }
        if (--deps[next] == 0) {
          pending[next];  // a node whose every gradient was undefined still runs, with zeros
          ready.push_back(next);
        }
      } else {
        TensorImpl& leaf = in.impl();
        if (g.defined()) accumulate_into_leaf(leaf, g);
        if (--leaf_uses[&leaf] == 0 && leaf.on_grad_ready && leaf.grad) {
          Tensor t = in;
          leaf.on_grad_ready(t);
        }
      }
    }
    if (!retain_graph) n->release();
    alive.erase(n);
  }
}

void backward(const Tensor& root, const Tensor& grad_output, bool retain_graph) {
  backward(std::vector<Tensor>{root}, std::vector<Tensor>{grad_output}, retain_graph);
}

}  // namespace serpent::autograd
