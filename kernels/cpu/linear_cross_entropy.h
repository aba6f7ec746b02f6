// cross_entropy(h @ w^T, targets) in chunks of rows on the host, with both gradients computed in
// the same pass (the loss is the root of the graph, so nothing upstream can change them but a
// scalar). For each chunk c of at most chunk_rows rows:
//   logits_c  = h_c @ w^T                                  (C, V)
//   lse, loss = log-sum-exp and lse - logit[target]        (kernels/cpu/cross_entropy.h)
//   dlogits_c = softmax(logits_c) - onehot(target)         (zero rows for ignored targets)
//   dh_c      = dlogits_c @ w;     dw += dlogits_c^T @ h_c
// The sums are unscaled: the caller divides by the number of counted rows and multiplies by the
// upstream gradient. Only one (C, V) chunk of logits exists at a time.
#pragma once

#include <cstdint>

namespace serpent::cpu {

// Logits per chunk when the caller picks no chunk size: 16 MiB of f32.
constexpr int64_t kLinearCrossEntropyChunkLogits = int64_t(1) << 22;

// h (M, D); w (V, D); targets (M), already checked to be in [0, V) or ignore_index.
// dh (M, D) and dw (V, D) are overwritten, or skipped when null. Returns the sum of the counted
// rows' losses (accumulated in double) and sets *count to the number of counted rows.
template <class T, class I>
double linear_cross_entropy_forward(const T* h, const T* w, const I* targets, int64_t M, int64_t D, int64_t V,
                                    int64_t ignore_index, int64_t chunk_rows, T* dh, T* dw, int64_t* count);

}  // namespace serpent::cpu
