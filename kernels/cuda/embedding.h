// Embedding lookup and its gradient on the GPU (kernels/cuda/embedding.cu); the CPU twin and the
// math are in kernels/cpu/embedding.h. Weights f32 or bf16 (dt), ids i32 or i64 (id_dt), all on
// the device. Ids are checked on the device as they are read (kernels/cuda/index_check.h): an id
// outside [0, V) gets a NaN output row and no gradient, and is reported lazily.
//
// The backward is deterministic (the same bits every run, equal to the CPU's f32 sum): the ids are
// sorted (stable radix sort, so equal ids keep their positions in order) and each distinct id's
// gradient row is the sum of its output-gradient rows in position order. No float atomics.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace serpent::cuda {

// weight (V, D); ids (M); out (M, D).
void embedding_forward(const void* weight, DType dt, const void* ids, DType id_dt, void* out, int64_t M, int64_t V,
                       int64_t D, int device);

// dout (M, D) of dt; dweight (V, D) of dt is overwritten (zero for ids that were not used).
void embedding_backward(const void* ids, DType id_dt, const void* dout, DType dt, void* dweight, int64_t M, int64_t V,
                        int64_t D, int device);

}  // namespace serpent::cuda
