#include "kernels/cpu/adamw.h"

#include <cmath>

namespace serpent::cpu {

template <class T>
void adamw_update(T* p, const T* g, T* m, T* v, int64_t n, const AdamWStep& s) {
  const T b1 = T(s.beta1), b2 = T(s.beta2);
  const T bias1 = T(1 - std::pow(s.beta1, double(s.step)));
  const T bias2_sqrt = T(std::sqrt(1 - std::pow(s.beta2, double(s.step))));
  const T step_size = T(s.lr) / bias1;
  const T decay = T(1 - s.lr * s.weight_decay);
  const T gs = T(s.grad_scale), eps = T(s.eps);
#pragma omp parallel for if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i] * gs;
    p[i] *= decay;
    m[i] = b1 * m[i] + (T(1) - b1) * gi;
    v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
    p[i] -= step_size * m[i] / (std::sqrt(v[i]) / bias2_sqrt + eps);
  }
}

template void adamw_update<float>(float*, const float*, float*, float*, int64_t, const AdamWStep&);
template void adamw_update<double>(double*, const double*, double*, double*, int64_t, const AdamWStep&);

}  // namespace serpent::cpu
