// Input validation shared by the ops: every failure names the op and what it saw.
#pragma once

#include <initializer_list>

#include "core/backend.h"
#include "core/tensor.h"

namespace serpent::checks {

inline void defined(const char* op, const char* name, const Tensor& t) {
  SERPENT_CHECK(t.defined(), op, ": ", name, " is undefined");
}

inline void floating(const char* op, const char* name, const Tensor& t) {
  defined(op, name, t);
  SERPENT_CHECK(is_floating(t.dtype()), op, ": ", name, " must be a floating tensor, got ", t.str());
}

inline void index_type(const char* op, const char* name, const Tensor& t) {
  defined(op, name, t);
  SERPENT_CHECK(t.dtype() == DType::i32 || t.dtype() == DType::i64, op, ": ", name, " must hold i32 or i64 ids, got ",
                t.str());
}

inline void shape(const char* op, const char* name, const Tensor& t, const Shape& expected) {
  defined(op, name, t);
  SERPENT_CHECK(t.shape() == expected, op, ": ", name, " has shape ", shape_str(t.shape()), ", expected ",
                shape_str(expected));
}

inline void rank(const char* op, const char* name, const Tensor& t, int64_t r) {
  defined(op, name, t);
  SERPENT_CHECK(t.dim() == r, op, ": ", name, " must have ", r, " dimensions, got ", t.str());
}

inline void nonempty(const char* op, const char* name, const Tensor& t) {
  SERPENT_CHECK(t.numel() > 0, op, ": ", name, " is empty (", t.str(), "); an empty batch cannot be processed");
}

// Same dtype and device as the reference tensor `like` (named `like_name`).
inline void like(const char* op, const char* name, const Tensor& t, const char* like_name, const Tensor& ref) {
  defined(op, name, t);
  SERPENT_CHECK(t.dtype() == ref.dtype(), op, ": ", name, " is ", t.str(), " but ", like_name, " is ", ref.str(),
                "; expected the same dtype");
  SERPENT_CHECK(t.device() == ref.device(), op, ": ", name, " is ", t.str(), " but ", like_name, " is ", ref.str(),
                "; expected the same device");
}

inline void same_shape(const char* op, const Tensor& a, const Tensor& b) {
  SERPENT_CHECK(a.shape() == b.shape(), op, ": shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
                " differ; expected equal shapes");
}

}  // namespace serpent::checks
