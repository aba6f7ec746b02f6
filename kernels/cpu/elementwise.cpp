#include "kernels/cpu/elementwise.h"

namespace serpent::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // below this, threads cost more than they save
}

template <class T>
void binary(Binary op, const T* a, const T* b, T* out, int64_t n) {
  switch (op) {
    case Binary::add:
#pragma omp parallel for if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
      break;
    case Binary::sub:
#pragma omp parallel for if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) out[i] = a[i] - b[i];
      break;
    case Binary::mul:
#pragma omp parallel for if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
      break;
  }
}

template <class T>
void unary(Unary op, const T* a, T* out, int64_t n) {
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    switch (op) {
      case Unary::exp:
        out[i] = std::exp(a[i]);
        break;
      case Unary::silu:
        out[i] = silu(a[i]);
        break;
      case Unary::softplus:
        out[i] = softplus(a[i]);
        break;
    }
  }
}

template <class T>
void unary_backward(Unary op, const T* x, const T* dy, T* dx, int64_t n) {
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    switch (op) {
      case Unary::exp:
        dx[i] = dy[i] * std::exp(x[i]);
        break;
      case Unary::silu:
        dx[i] = dy[i] * silu_grad(x[i]);
        break;
      case Unary::softplus:
        dx[i] = dy[i] * softplus_grad(x[i]);
        break;
    }
  }
}

template <class T>
void scale(const T* a, T s, T* out, int64_t n) {
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * s;
}

template <class T>
double sum(const T* a, int64_t n) {
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += double(a[i]);
  return total;
}

#define SERPENT_INSTANTIATE(T)                                             \
  template void binary<T>(Binary, const T*, const T*, T*, int64_t);        \
  template void unary<T>(Unary, const T*, T*, int64_t);                    \
  template void unary_backward<T>(Unary, const T*, const T*, T*, int64_t); \
  template void scale<T>(const T*, T, T*, int64_t);                        \
  template double sum<T>(const T*, int64_t);
SERPENT_INSTANTIATE(float)
SERPENT_INSTANTIATE(double)
#undef SERPENT_INSTANTIATE

}  // namespace serpent::cpu
