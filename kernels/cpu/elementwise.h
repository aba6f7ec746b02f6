// Elementwise kernels on the host: the readable definitions that the CUDA versions must match.
// All pointers are contiguous arrays of n elements; T is float or double.
#pragma once

#include <cmath>
#include <cstdint>

namespace serpent::cpu {

// The one definition of softplus and its derivative, shared by every kernel that needs them
// (the scan fuses it): above 20 softplus is the identity in float precision, as in PyTorch.
template <class T>
inline T softplus(T v) {
  return v > T(20) ? v : std::log1p(std::exp(v));
}
template <class T>
inline T sigmoid(T v) {
  return T(1) / (T(1) + std::exp(-v));
}
template <class T>
inline T softplus_grad(T v) {
  return v > T(20) ? T(1) : sigmoid(v);
}
template <class T>
inline T silu(T v) {
  return v * sigmoid(v);
}
// d silu / dv = sig(v) * (1 + v * (1 - sig(v)))
template <class T>
inline T silu_grad(T v) {
  T s = sigmoid(v);
  return s * (T(1) + v * (T(1) - s));
}

enum class Binary { add, sub, mul };
enum class Unary { exp, silu, softplus };

template <class T>
void binary(Binary op, const T* a, const T* b, T* out, int64_t n);
template <class T>
void unary(Unary op, const T* a, T* out, int64_t n);
// dx = dy * f'(x) for the unary op.
template <class T>
void unary_backward(Unary op, const T* x, const T* dy, T* dx, int64_t n);
template <class T>
void scale(const T* a, T s, T* out, int64_t n);
template <class T>
double sum(const T* a, int64_t n);  // accumulated in double, fixed order

}  // namespace serpent::cpu
