#include "core/tensor.h"

#include <cmath>
#include <cstring>
#include <sstream>

#ifdef SERPENT_CUDA
#include "core/cuda/convert.h"
#endif

namespace serpent {

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

namespace {

template <class T>
double load_as_double(const void* p, int64_t i) {
  return double(static_cast<const T*>(p)[i]);
}

double load_any(const void* p, DType dt, int64_t i) {
  switch (dt) {
    case DType::f32:
      return load_as_double<float>(p, i);
    case DType::f64:
      return load_as_double<double>(p, i);
    case DType::bf16:
      return double(float(static_cast<const bf16*>(p)[i]));
    case DType::i32:
      return load_as_double<int32_t>(p, i);
    case DType::i64:
      return load_as_double<int64_t>(p, i);
  }
  return 0;
}

template <class S>
auto float_or_same(S v) {
  if constexpr (std::is_same_v<S, bf16>)
    return float(v);
  else
    return v;
}

template <class Dst, class Src>
void convert_loop(Dst* dst, const Src* src, int64_t n) {
#pragma omp parallel for if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<Dst, bf16>)
      dst[i] = bf16(float(float_or_same(src[i])));
    else
      dst[i] = Dst(float_or_same(src[i]));
  }
}

// Host conversion between any two dtypes. Values go through float for bf16 and through the
// source's own type otherwise, so f64 -> i64 truncates like a C cast.
void convert_cpu(void* dst, DType dst_dt, const void* src, DType src_dt, int64_t n) {
  if (dst_dt == src_dt) {
    std::memcpy(dst, src, size_t(n) * dtype_size(dst_dt));
    return;
  }
  auto with_src = [&](auto* d) {
    switch (src_dt) {
      case DType::f32:
        convert_loop(d, static_cast<const float*>(src), n);
        break;
      case DType::f64:
        convert_loop(d, static_cast<const double*>(src), n);
        break;
      case DType::bf16:
        convert_loop(d, static_cast<const bf16*>(src), n);
        break;
      case DType::i32:
        convert_loop(d, static_cast<const int32_t*>(src), n);
        break;
      case DType::i64:
        convert_loop(d, static_cast<const int64_t*>(src), n);
        break;
    }
  };
  switch (dst_dt) {
    case DType::f32:
      with_src(static_cast<float*>(dst));
      break;
    case DType::f64:
      with_src(static_cast<double*>(dst));
      break;
    case DType::bf16:
      with_src(static_cast<bf16*>(dst));
      break;
    case DType::i32:
      with_src(static_cast<int32_t*>(dst));
      break;
    case DType::i64:
      with_src(static_cast<int64_t*>(dst));
      break;
  }
}

}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t s : shape) SERPENT_CHECK(s >= 0, "empty: negative size in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->storage = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(dtype), device);
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t d) const {
  int64_t nd = dim();
  SERPENT_CHECK(d >= -nd && d < nd, "size: dimension ", d, " out of range for shape ", shape_str(shape()));
  return shape()[size_t(d < 0 ? d + nd : d)];
}

std::string Tensor::str() const {
  if (!defined()) return "undefined";
  return str_cat(dtype_name(dtype()), shape_str(shape()), " on ", device().str());
}

void Tensor::check_element_type(size_t size, DType want) const {
  SERPENT_CHECK(dtype() == want && dtype_size(want) == size, "data<", dtype_name(want), ">: tensor is ", str());
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor host = to(Device::cpu()).to(type_dtype<T>());
  const T* p = host.data<T>();
  return std::vector<T>(p, p + host.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

double Tensor::item() const {
  SERPENT_CHECK(numel() == 1, "item: expected a one-element tensor, got ", str());
  Tensor host = to(Device::cpu());
  return load_any(host.data_ptr(), dtype(), 0);
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor out = empty(shape(), dtype(), device);
  copy_bytes(out.data_ptr(), device, data_ptr(), this->device(), nbytes());
  return out;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == this->dtype()) return *this;
  Tensor out = empty(shape(), dtype, device());
  out.copy_(*this);
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  copy_bytes(out.data_ptr(), device(), data_ptr(), device(), nbytes());
  return out;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::view(const Shape& new_shape) const {
  Shape s = new_shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      SERPENT_CHECK(infer < 0, "view: more than one -1 in ", shape_str(new_shape));
      infer = int64_t(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    SERPENT_CHECK(known > 0 && numel() % known == 0, "view: cannot infer -1 in ", shape_str(new_shape), " for ", str());
    s[size_t(infer)] = numel() / known;
  }
  SERPENT_CHECK(shape_numel(s) == numel(), "view: shape ", shape_str(new_shape), " does not match ", numel(),
                " elements of ", str());
  Tensor out = detach();
  out.impl().shape = s;
  return out;
}

void Tensor::copy_(const Tensor& src) {
  SERPENT_CHECK(src.numel() == numel(), "copy_: source ", src.str(), " and destination ", str(),
                " differ in element count");
  if (src.dtype() == dtype()) {
    if (src.data_ptr() == data_ptr() && src.device() == device()) return;  // onto itself (memcpy may not)
    copy_bytes(data_ptr(), device(), src.data_ptr(), src.device(), nbytes());
    return;
  }
  // Move the bytes first, then convert where the destination lives.
  Tensor staged = src.to(device());
  if (device().is_cpu()) {
    convert_cpu(data_ptr(), dtype(), staged.data_ptr(), staged.dtype(), numel());
    return;
  }
#ifdef SERPENT_CUDA
  cuda::convert(data_ptr(), dtype(), staged.data_ptr(), staged.dtype(), numel(), device().index);
#endif
}

void Tensor::fill_(double value) {
  if (device().is_cpu()) {
    int64_t n = numel();
    void* p = data_ptr();
    switch (dtype()) {
      case DType::f32:
        std::fill_n(static_cast<float*>(p), n, float(value));
        break;
      case DType::f64:
        std::fill_n(static_cast<double*>(p), n, value);
        break;
      case DType::bf16:
        std::fill_n(static_cast<bf16*>(p), n, bf16(float(value)));
        break;
      case DType::i32:
        std::fill_n(static_cast<int32_t*>(p), n, int32_t(value));
        break;
      case DType::i64:
        std::fill_n(static_cast<int64_t*>(p), n, int64_t(value));
        break;
    }
    return;
  }
#ifdef SERPENT_CUDA
  cuda::fill(data_ptr(), dtype(), numel(), value, device().index);
#endif
}

Tensor& Tensor::set_requires_grad(bool on) {
  SERPENT_CHECK(is_leaf(), "set_requires_grad: only leaf tensors can change requires_grad, got the output of ",
                "an op");
  SERPENT_CHECK(!on || is_floating(dtype()), "set_requires_grad: a ", dtype_name(dtype()),
                " tensor cannot require gradients");
  impl().requires_grad = on;
  return *this;
}

}  // namespace serpent
