// Mixed-precision helpers shared by the ops that multiply bf16 activations by f32 master weights.
#pragma once

#include "core/tensor.h"

namespace serpent {

// The bf16 operand for an f32 weight in a mixed-precision product: the copy the optimizer keeps
// in TensorImpl::bf16_copy, or a conversion made now.
Tensor bf16_operand(const Tensor& w);

}  // namespace serpent
