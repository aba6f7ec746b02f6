// The language-model head fused with cross-entropy (kernels/cpu/linear_cross_entropy.h has the
// math; the GPU version is kernels/cuda/linear_cross_entropy.h). The forward already computes the
// gradient sums for h and weight when they are needed; the backward only scales them by
// upstream / count, where count is the number of rows whose target is not ignore_index.
#include <algorithm>
#include <limits>

#include "autograd/checks.h"
#include "autograd/mixed_precision.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "kernels/cpu/linear_cross_entropy.h"
#include "kernels/cuda/index_check.h"
#include "kernels/cuda/linear_cross_entropy.h"

namespace serpent {

namespace {

constexpr const char* kOp = "linear_cross_entropy";

// Rows per chunk: the caller's choice, or as many as fit the logits budget (whole multiples of 64
// rows when there are that many, for the GEMMs' tiles), never more than M.
int64_t pick_chunk_rows(int64_t chunk_rows, int64_t M, int64_t V, int64_t budget) {
  if (chunk_rows > 0) return std::min(chunk_rows, M);
  int64_t rows = std::max<int64_t>(1, budget / V);
  if (rows >= 64) rows -= rows % 64;
  return std::min(rows, M);
}

// Host-side target check, with cross_entropy's wording.
void check_targets(const Tensor& targets, int64_t V, int64_t ignore_index) {
  Tensor t64 = targets.to(DType::i64);
  const int64_t* tp = t64.data<int64_t>();
  for (int64_t m = 0; m < t64.numel(); ++m)
    SERPENT_CHECK(tp[m] == ignore_index || (tp[m] >= 0 && tp[m] < V), kOp, ": target ", tp[m], " at row ", m,
                  " is outside [0, ", V, ") and is not the ignore index ", ignore_index);
}

template <class F>
auto dispatch_targets(DType dt, F&& f) {
  if (dt == DType::i32) return f(int32_t{});
  return f(int64_t{});
}

Tensor linear_cross_entropy_cpu(const Tensor& h, const Tensor& weight, const Tensor& targets, int64_t ignore_index,
                                int64_t chunk_rows, bool need_h, bool need_w) {
  checks::like(kOp, "weight", weight, "input", h);
  SERPENT_CHECK(targets.device().is_cpu(), kOp, ": targets on ", targets.device().str(), " but the input on the cpu");
  const int64_t M = h.size(0), D = h.size(1), V = weight.size(0);
  check_targets(targets, V, ignore_index);
  const int64_t rows = pick_chunk_rows(chunk_rows, M, V, cpu::kLinearCrossEntropyChunkLogits);
  Tensor dh = need_h ? Tensor::empty({M, D}, h.dtype()) : Tensor();
  Tensor dw = need_w ? Tensor::empty({V, D}, h.dtype()) : Tensor();
  Tensor loss = Tensor::empty({}, h.dtype());
  int64_t count = 0;
  dispatch_float(h.dtype(), kOp, [&](auto z) {
    using T = decltype(z);
    const double total = dispatch_targets(targets.dtype(), [&](auto i0) {
      using I = decltype(i0);
      return cpu::linear_cross_entropy_forward<T, I>(h.data<T>(), weight.data<T>(), targets.data<I>(), M, D, V,
                                                     ignore_index, rows, dh.defined() ? dh.data<T>() : nullptr,
                                                     dw.defined() ? dw.data<T>() : nullptr, &count);
    });
    // Like PyTorch, a batch whose every target is ignored has a NaN mean (and zero gradients).
    *loss.data<T>() = count ? T(total / double(count)) : std::numeric_limits<T>::quiet_NaN();
  });
  autograd::record(kOp, loss, {h, weight}, [dh, dw, count](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    const double s = count ? g[0].item() / double(count) : 0.0;
    return {dh.defined() ? scale(dh, s) : Tensor(), dw.defined() ? scale(dw, s) : Tensor()};
  });
  return loss;
}

#ifdef SERPENT_CUDA
// The GPU contract (ops.h): weight f32; h f32 (all-f32 products) or bf16 (products on weight's
// bf16 copy with f32 accumulation). Nothing here waits for the device.
Tensor linear_cross_entropy_cuda(const Tensor& h, const Tensor& weight, const Tensor& targets, int64_t ignore_index,
                                 int64_t chunk_rows, bool need_h, bool need_w) {
  const Device dev = h.device();
  const int64_t M = h.size(0), D = h.size(1), V = weight.size(0);
  SERPENT_CHECK(weight.device() == dev, kOp, ": input on ", dev.str(), " but weight on ", weight.device().str());
  SERPENT_CHECK(weight.dtype() == DType::f32, kOp, ": on a GPU the weight must be f32 (the master copy; bf16 inputs ",
                "use its bf16_copy), got ", weight.str());
  SERPENT_CHECK(h.dtype() == DType::f32 || h.dtype() == DType::bf16, kOp,
                ": on a GPU the input must be f32 or bf16, got ", h.str());
  const Tensor operand = h.dtype() == DType::bf16 ? bf16_operand(weight) : weight;
  Tensor targets_dev = targets;
  if (targets.is_cuda()) {
    SERPENT_CHECK(targets.device() == dev, kOp, ": targets on ", targets.device().str(), " but the input on ",
                  dev.str());
    cuda::raise_recorded_bad_index(dev.index);
  } else {
    check_targets(targets, V, ignore_index);
    targets_dev = targets.to(dev);
  }
  const int64_t rows = pick_chunk_rows(chunk_rows, M, V, cuda::kLinearCrossEntropyChunkLogits);
  Tensor loss = Tensor::empty({}, DType::f32, dev);
  Tensor count = Tensor::empty({}, DType::f32, dev);
  Tensor dh = need_h ? Tensor::empty({M, D}, DType::f32, dev) : Tensor();
  Tensor dw = need_w ? Tensor::empty({V, D}, DType::f32, dev) : Tensor();
  cuda::linear_cross_entropy_forward(h.data_ptr(), operand.data_ptr(), h.dtype(), targets_dev.data_ptr(),
                                     targets_dev.dtype(), M, D, V, ignore_index, rows, loss.data<float>(),
                                     count.data<float>(), dh.defined() ? dh.data<float>() : nullptr,
                                     dw.defined() ? dw.data<float>() : nullptr, dev.index);
  const DType h_dt = h.dtype();
  autograd::record(kOp, loss, {h, weight}, [dh, dw, count, h_dt](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    SERPENT_CHECK(g[0].dtype() == DType::f32 && g[0].device() == count.device(), kOp,
                  " backward: expected an f32 upstream gradient on ", count.device().str(), ", got ", g[0].str());
    auto scaled = [&](const Tensor& raw, DType dt) {
      if (!raw.defined()) return Tensor();
      Tensor out = Tensor::empty(raw.shape(), dt, raw.device());
      cuda::linear_cross_entropy_scale(raw.data<float>(), out.data_ptr(), dt, raw.numel(), g[0].data<float>(),
                                       count.data<float>(), raw.device().index);
      return out;
    };
    return {scaled(dh, h_dt), scaled(dw, DType::f32)};
  });
  return loss;
}
#endif

}  // namespace

Tensor linear_cross_entropy(const Tensor& h, const Tensor& weight, const Tensor& targets, int64_t ignore_index,
                            int64_t chunk_rows) {
  checks::floating(kOp, "input", h);
  checks::rank(kOp, "input", h, 2);
  checks::nonempty(kOp, "input", h);
  checks::floating(kOp, "weight", weight);
  checks::rank(kOp, "weight", weight, 2);
  checks::nonempty(kOp, "weight", weight);
  SERPENT_CHECK(weight.size(1) == h.size(1), kOp, ": input ", shape_str(h.shape()), " has ", h.size(1),
                " features but weight ", shape_str(weight.shape()), " has ", weight.size(1),
                "; expected input (M, D) and weight (V, D)");
  checks::index_type(kOp, "targets", targets);
  checks::shape(kOp, "targets", targets, {h.size(0)});
  SERPENT_CHECK(chunk_rows >= 0, kOp, ": chunk_rows must be 0 (automatic) or positive, got ", chunk_rows);
  const bool recording = autograd::grad_enabled();
  const bool need_h = recording && h.requires_grad(), need_w = recording && weight.requires_grad();
  if (h.is_cuda()) {
    SERPENT_ON_CUDA(return linear_cross_entropy_cuda(h, weight, targets, ignore_index, chunk_rows, need_h, need_w));
  }
  return linear_cross_entropy_cpu(h, weight, targets, ignore_index, chunk_rows, need_h, need_w);
}

}  // namespace serpent
