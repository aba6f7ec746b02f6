#include "kernels/cpu/adamw.h"

#include <cmath>
#include <type_traits>

#include "core/dtype.h"

namespace serpent::cpu {

namespace {

// A moment read into the compute type, or rounded back to its storage type (bf16 converts
// through float; between equal types it is the value itself).
template <class To, class From>
To convert(From x) {
  if constexpr (std::is_same_v<To, From>)
    return x;
  else
    return To(float(x));
}

}  // namespace

template <class T, class M>
void adamw_update(T* p, const T* g, M* m, M* v, int64_t n, const AdamWStep& s) {
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
    const T mi = b1 * convert<T>(m[i]) + (T(1) - b1) * gi;
    const T vi = b2 * convert<T>(v[i]) + (T(1) - b2) * gi * gi;
    m[i] = convert<M>(mi);
    v[i] = convert<M>(vi);
    p[i] -= step_size * mi / (std::sqrt(vi) / bias2_sqrt + eps);
  }
}

template void adamw_update<float, float>(float*, const float*, float*, float*, int64_t, const AdamWStep&);
template void adamw_update<double, double>(double*, const double*, double*, double*, int64_t, const AdamWStep&);
template void adamw_update<float, bf16>(float*, const float*, bf16*, bf16*, int64_t, const AdamWStep&);

}  // namespace serpent::cpu
