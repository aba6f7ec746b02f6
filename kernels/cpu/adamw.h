// One AdamW update, PyTorch's order of operations (torch.optim.AdamW, not amsgrad):
//   p *= 1 - lr * weight_decay
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr * (m / (1 - beta1^step)) / (sqrt(v / (1 - beta2^step)) + eps)
// g is multiplied by grad_scale first (gradient clipping folds in there). The moments may be
// stored narrower than the parameters (M = bf16 with T = float: optim.state_dtype bf16); they are
// then read into T, updated in T, and the new m and v rounded to M (to nearest even) once per
// step, and the parameter update uses the unrounded values of this step.
#pragma once

#include <cstdint>

namespace serpent::cpu {

struct AdamWStep {
  double lr, beta1, beta2, eps, weight_decay, grad_scale;
  int64_t step;  // 1 for the first update
};

// p, g, m, v: n elements each.
template <class T, class M = T>
void adamw_update(T* p, const T* g, M* m, M* v, int64_t n, const AdamWStep& s);

}  // namespace serpent::cpu
