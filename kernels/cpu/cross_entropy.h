// Cross-entropy fused with log-softmax, on the host.
//   lse[m]  = log sum_v exp(logits[m,v])
//   loss    = (1 / count) sum_{m valid} (lse[m] - logits[m, target[m]])
//   dlogits[m,v] = scale * (softmax[m,v] - [v == target[m]]) for valid rows, 0 for ignored ones
// where a row is valid when target[m] != ignore_index and count is the number of valid rows.
#pragma once

#include <cstdint>

namespace serpent::cpu {

// logits (M, V); targets (M); lse (M) written for valid rows. Returns the sum of the valid rows'
// losses (accumulated in double, in row order) and sets *count.
template <class T, class I>
double cross_entropy_forward(const T* logits, const I* targets, T* lse, int64_t M, int64_t V, int64_t ignore_index,
                             int64_t* count);

// dlogits (M, V) is overwritten; scale is d loss / d (sum of row losses).
template <class T, class I>
void cross_entropy_backward(const T* logits, const I* targets, const T* lse, T* dlogits, int64_t M, int64_t V,
                            int64_t ignore_index, T scale);

}  // namespace serpent::cpu
