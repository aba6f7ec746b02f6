// One AdamW update, PyTorch's order of operations (torch.optim.AdamW, not amsgrad):
//   p *= 1 - lr * weight_decay
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr * (m / (1 - beta1^step)) / (sqrt(v / (1 - beta2^step)) + eps)
// g is multiplied by grad_scale first (gradient clipping folds in there).
#pragma once

#include <cstdint>

namespace serpent::cpu {

struct AdamWStep {
  double lr, beta1, beta2, eps, weight_decay, grad_scale;
  int64_t step;  // 1 for the first update
};

// p, g, m, v: n elements each.
template <class T>
void adamw_update(T* p, const T* g, T* m, T* v, int64_t n, const AdamWStep& s);

}  // namespace serpent::cpu
