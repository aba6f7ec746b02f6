#include "autograd/checkpoint.h"

#include "autograd/engine.h"
#include "autograd/node.h"

namespace serpent::autograd {

std::vector<Tensor> checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs) {
  bool any = false;
  for (const Tensor& t : inputs) any = any || (t.defined() && t.requires_grad());
  if (!grad_enabled() || !any) return fn(inputs);

  std::vector<Tensor> outputs;
  {
    NoGradGuard no_grad;
    outputs = fn(inputs);
  }
  std::vector<Tensor*> outs;
  for (Tensor& o : outputs) {
    SERPENT_CHECK(o.defined(), "checkpoint: the function returned an undefined output");
    o = o.detach();  // its own TensorImpl, so that marking it never marks an input it aliases
    outs.push_back(&o);
  }
  // The closure holds the inputs themselves (the node keeps only edges to them).
  record("checkpoint", outs, inputs, [fn, inputs](const std::vector<Tensor>& grads) {
    std::vector<Tensor> leaves;
    for (const Tensor& t : inputs) {
      Tensor leaf = t.defined() ? t.detach() : Tensor();
      if (t.defined() && t.requires_grad()) leaf.set_requires_grad(true);
      leaves.push_back(leaf);
    }
    std::vector<Tensor> again;
    {
      EnableGradGuard grad_on;
      again = fn(leaves);
    }
    SERPENT_CHECK(again.size() == grads.size(), "checkpoint: the recomputed function returned ", again.size(),
                  " outputs, the first run ", grads.size());
    std::vector<Tensor> roots, root_grads;
    for (size_t i = 0; i < again.size(); ++i)
      if (again[i].requires_grad()) {
        roots.push_back(again[i]);
        root_grads.push_back(grads[i]);
      }
    if (!roots.empty()) backward(roots, root_grads);
    std::vector<Tensor> input_grads;
    for (const Tensor& leaf : leaves)
      input_grads.push_back(leaf.defined() && leaf.requires_grad() ? leaf.grad() : Tensor());
    return input_grads;
  });
  return outputs;
}

}  // namespace serpent::autograd
