// Tensor: a dtype, a shape and a refcounted storage on one device, contiguous row-major.
// The autograd fields live here too (requires_grad, grad, grad_fn) because every op needs them;
// the graph machinery itself, backward() included, is in autograd/ (autograd/engine.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/storage.h"

namespace serpent {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& shape);
int64_t shape_numel(const Shape& shape);

namespace autograd {
struct Node;
}
class Tensor;
// Tensors by name, in a meaningful order: a state dict, a checkpoint section, a bucket's members.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements, for views into a larger storage
  Shape shape;
  DType dtype = DType::f32;

  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;            // accumulated gradient of a leaf
  std::shared_ptr<autograd::Node> grad_fn;     // the op that produced this tensor
  int output_nr = 0;                           // which output of grad_fn this is
  std::function<void(Tensor&)> on_grad_ready;  // called once a leaf's gradient is complete
  // Mixed precision: a bf16 copy of an f32 parameter that GPU matmuls read instead of converting
  // it every step. The optimizer rewrites it after each update (kernels/cuda/adamw.h).
  std::shared_ptr<TensorImpl> bf16_copy;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Uninitialized tensor.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t dim() const { return int64_t(shape().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(shape()); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  bool is_cuda() const { return device().is_cuda(); }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype()); }
  std::string str() const;  // "f32[2, 3] on cpu"

  void* data_ptr() const {
    return static_cast<char*>(impl().storage->data()) + impl().offset * int64_t(dtype_size(dtype()));
  }
  template <class T>
  T* data() const {
    check_element_type(sizeof(T), type_dtype<T>());
    return static_cast<T*>(data_ptr());
  }

  // Host copies: to_vector<T>() converts from any dtype; item() reads a one-element tensor.
  template <class T>
  std::vector<T> to_vector() const;
  double item() const;

  Tensor to(Device device) const;         // copy unless already there (not differentiable)
  Tensor to(DType dtype) const;           // convert unless already that dtype (not differentiable)
  Tensor clone() const;                   // deep copy, detached
  Tensor detach() const;                  // shares storage, no grad history
  Tensor view(const Shape& shape) const;  // shares storage, not differentiable; -1 infers a size

  void copy_(const Tensor& src);  // in-place copy from any device/dtype with the same numel
  void fill_(double value);
  void zero_() { fill_(0.0); }

  // Autograd.
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  Tensor& set_requires_grad(bool on = true);
  Tensor grad() const { return Tensor(impl().grad); }
  void set_grad(const Tensor& g) { impl().grad = g.impl_; }
  void zero_grad() { impl().grad.reset(); }
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }
  bool is_leaf() const { return impl().grad_fn == nullptr; }

  TensorImpl& impl() const {
    SERPENT_CHECK(impl_, "use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  template <class T>
  static DType type_dtype();

 private:
  void check_element_type(size_t size, DType want) const;
  std::shared_ptr<TensorImpl> impl_;
};

template <>
inline DType Tensor::type_dtype<float>() {
  return DType::f32;
}
template <>
inline DType Tensor::type_dtype<double>() {
  return DType::f64;
}
template <>
inline DType Tensor::type_dtype<bf16>() {
  return DType::bf16;
}
template <>
inline DType Tensor::type_dtype<int32_t>() {
  return DType::i32;
}
template <>
inline DType Tensor::type_dtype<int64_t>() {
  return DType::i64;
}

// Calls f with a value of the C++ type of a floating dtype on the host (float or double).
// bf16 is a storage format on the host: kernels there compute in f32 or f64.
template <class F>
auto dispatch_float(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::f32:
      return f(float{});
    case DType::f64:
      return f(double{});
    default:
      fail(op, ": expected a f32 or f64 tensor on the cpu, got ", dtype_name(dt));
  }
}

}  // namespace serpent
