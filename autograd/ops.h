// The differentiable operations, with PyTorch's names and semantics. Each checks its inputs
// (throwing serpent::Error naming the op, the shapes and the dtypes), runs the CPU or CUDA kernel
// for the inputs' device, and records a backward closure when an input requires a gradient.
// Shapes in comments: B batch, L sequence, D d_model, E d_inner, N d_state, W conv width, V vocab.
#pragma once

#include <functional>
#include <optional>
#include <utility>

#include "core/tensor.h"

namespace serpent {

// ---- elementwise (same shape, same dtype, same device) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, double s);  // a * s
Tensor exp(const Tensor& a);
Tensor silu(const Tensor& a);
Tensor softplus(const Tensor& a);  // v > 20 ? v : log1p(exp(v)), as torch.nn.functional.softplus
Tensor sum(const Tensor& a);       // all elements -> one-element tensor of shape []
Tensor mean(const Tensor& a);
Tensor cast(const Tensor& a, DType dtype);  // differentiable dtype conversion

// ---- in place, never recorded (optimizers, gradient accumulation) ----
void add_(Tensor& dst, const Tensor& src);  // dst += src
void scale_(Tensor& dst, double s);         // dst *= s

// ---- shape ----
Tensor reshape(const Tensor& a, const Shape& shape);  // a view; -1 infers one size
// Rows [start, start + length) of dimension 0: a view sharing storage (and sharing the slice of a
// parameter's bf16_copy); the gradient is scattered back into a zero tensor of the full shape.
Tensor narrow(const Tensor& a, int64_t dim, int64_t start, int64_t length);
// Columns [start, start + length) of the last dimension (a copy; the gradient scatters back).
Tensor slice_last(const Tensor& a, int64_t start, int64_t length);

// ---- matrix products (2-D, row-major) ----
Tensor matmul(const Tensor& a, const Tensor& b);  // (M, K) @ (K, N) -> (M, N)
// (M, K) @ (N, K)^T -> (M, N), as F.linear. On a GPU, x may be bf16 with w an f32 parameter:
// the product then reads w's bf16_copy (or a converted copy), runs in bf16 with f32
// accumulation, returns bf16, and w's gradient comes back in f32.
Tensor linear(const Tensor& x, const Tensor& w);
// linear(x, w_i) for consecutive row blocks w_i of w (rows[i] rows each, adding up to all of w's
// rows): the outputs of a projection that is split ([x ; z], [dt ; B ; C]), each contiguous. One
// node: dx is accumulated by the products in place (beta = 1) and each w_i's gradient is written
// into its rows of one gradient tensor, with no zero-filled copies per block and no adds; when
// the outputs are narrow (all rows at most a quarter of x's columns) it is one product each way
// over the whole weight, its columns copied out and the gradients copied in.
std::vector<Tensor> linear_rows(const Tensor& x, const Tensor& w, const std::vector<int64_t>& rows);

// ---- model ops ----
// weight (V, D), ids (...) of i32 or i64 -> (..., D). Every id must be in [0, V).
// On a GPU the weight is f32 or bf16 and the ids may be on the cpu (checked there, then uploaded)
// or on the weight's device (checked by the kernel and reported lazily: kernels/cuda/index_check.h).
Tensor embedding(const Tensor& weight, const Tensor& ids);

// residual_out = h + residual (residual may be undefined: residual_out = h);
// normed = residual_out / sqrt(mean(residual_out^2) + eps) * weight, over the last dimension.
// Returns {normed, residual_out}. h, residual (..., D); weight (D).
// On the cpu every tensor has one dtype. On a GPU the residual stream is f32 (h may be bf16 or
// f32; residual and weight are f32; residual_out is f32) and normed has dtype out_dtype
// (default: h's dtype), so the fused kernel reads bf16 activations and writes the bf16 input of
// the next matmul while the residual stays in f32.
std::pair<Tensor, Tensor> add_rms_norm(const Tensor& h, const Tensor& residual, const Tensor& weight, double eps,
                                       std::optional<DType> out_dtype = std::nullopt);
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps);

// Depthwise causal convolution over time, zero left padding, optional fused SiLU:
// out[b,t,e] = act(bias[e] + sum_w weight[e,w] * x[b, t-W+1+w, e]).
// x (B, L, E); weight (E, W); bias (E) or undefined. On the cpu all share one dtype; on a GPU x
// (and out) are f32 or bf16 while weight and bias (and their gradients) are f32, and W <= 4.
Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, bool silu_activation);

struct ScanOutput {
  Tensor y;           // (B, L, E): gated output when z is given
  Tensor last_state;  // (B, E, N) fp32-or-input dtype, not differentiable
};
// The Mamba-1 selective scan with the discretization fused (docs/DESIGN.md, "The selective scan"):
// delta = softplus?(delta + delta_bias); s_t = exp(delta_t A) s_{t-1} + delta_t B_t u_t;
// y_t = C_t . s_t + D u_t; out = y * silu(z).
// u, delta, z (B, L, E); A (E, N); Bm, Cm (B, L, N); D, delta_bias (E). D, z, delta_bias optional.
// With recompute_delta, the node does not keep delta: its backward calls recompute_delta() for a
// tensor equal to delta (the mixer passes dt_proj's product again, from dt_low, which dt_proj's
// own node keeps anyway), which saves one (B, L, E) activation per layer.
using RecomputeFn = std::function<Tensor()>;
ScanOutput selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& Bm, const Tensor& Cm,
                          const Tensor& D, const Tensor& z, const Tensor& delta_bias, bool delta_softplus,
                          const RecomputeFn& recompute_delta = {});

// Mean negative log-likelihood of targets under softmax(logits), skipping ignore_index.
// logits (M, V); targets (M) of i32 or i64. Returns a one-element tensor of shape [].
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100);

// cross_entropy(linear(h, weight), targets) as one op that never holds all M x V logits at once:
// rows are processed in chunks of chunk_rows (0: a size that bounds the chunk's logits, see
// kernels/{cpu,cuda}/linear_cross_entropy.h), and the gradients for h and weight are computed in
// the same pass (the loss is the root of the graph, so backward only scales them by the upstream
// gradient). h (M, D); weight (V, D); targets (M) of i32 or i64. On the cpu h and weight share
// one dtype (f32 or f64) and the loss has it. On a GPU weight is f32 and h is f32 or bf16 (then
// the product reads weight's bf16_copy); the loss is f32, h's gradient has h's dtype and
// weight's is f32; targets may be on the cpu (checked there) or on the GPU (checked lazily:
// kernels/cuda/index_check.h).
Tensor linear_cross_entropy(const Tensor& h, const Tensor& weight, const Tensor& targets, int64_t ignore_index = -100,
                            int64_t chunk_rows = 0);

}  // namespace serpent
