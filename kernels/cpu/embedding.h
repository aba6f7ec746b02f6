// Embedding lookup and its gradient, on the host.
//   out[i, :] = weight[ids[i], :];   dweight[v, :] = sum_{i: ids[i] = v} dout[i, :]
#pragma once

#include <cstdint>

namespace serpent::cpu {

// weight (V, D); ids (M); out (M, D). Ids must already be checked to lie in [0, V).
template <class T, class I>
void embedding_forward(const T* weight, const I* ids, T* out, int64_t M, int64_t D);

// dout (M, D); dweight (V, D) is overwritten.
template <class T, class I>
void embedding_backward(const I* ids, const T* dout, T* dweight, int64_t M, int64_t V, int64_t D);

}  // namespace serpent::cpu
