// Column blocks of row-major matrices, for the ops that split along the last dimension
// (slice_last, linear_rows). Not differentiable: those ops record their own backward.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace serpent {

// Gathers (scatter = false) columns [start, start + len) of src (rows, cols) into dst (rows, len),
// or writes dst into those columns of src (scatter = true).
void copy_columns(const Tensor& src, const Tensor& dst, int64_t rows, int64_t cols, int64_t start, int64_t len,
                  bool scatter);

}  // namespace serpent
