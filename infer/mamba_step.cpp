#include "infer/mamba_step.h"

#include <cstring>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/creation.h"
#include "kernels/cpu/mamba_step.h"

namespace serpent {

namespace {

void check_cpu(const Tensor& t, const char* what) {
  SERPENT_CHECK(t.device().is_cpu(), "generation runs on the cpu, but ", what, " is ", t.str(),
                "; move the model there first");
}

// x (B, L, C) -> its last position (B, C).
Tensor last_position(const Tensor& x) {
  const int64_t B = x.size(0), L = x.size(1), C = x.size(2);
  Tensor out = Tensor::empty({B, C}, x.dtype());
  const size_t row = size_t(C) * dtype_size(x.dtype());
  const char* src = static_cast<const char*>(x.data_ptr());
  char* dst = static_cast<char*>(out.data_ptr());
  for (int64_t b = 0; b < B; ++b) std::memcpy(dst + size_t(b) * row, src + size_t(b * L + L - 1) * row, row);
  return out;
}

}  // namespace

MambaInferenceState init_inference_state(const MambaLM& model, int64_t batch) {
  SERPENT_CHECK(batch >= 1, "init_inference_state: batch must be at least 1, got ", batch);
  const MambaConfig& c = model.config();
  const DType dtype = model.backbone().embeddings.weight.dtype();
  MambaInferenceState state;
  state.batch = batch;
  for (int64_t i = 0; i < c.n_layer; ++i)
    state.layers.push_back(
        {zeros({batch, c.d_inner(), c.d_conv}, dtype), zeros({batch, c.d_inner(), c.d_state}, dtype)});
  return state;
}

Tensor prefill(const MambaMixer& m, const Tensor& x0, MambaLayerState& state) {
  SERPENT_CHECK(x0.dim() == 3, "prefill: expected mixer input (B, L, d_model), got ", x0.str());
  check_cpu(x0, "the mixer input");
  return m.forward(x0, &state);
}

Tensor step(const MambaMixer& m, const Tensor& x0, MambaLayerState& state) {
  SERPENT_CHECK(x0.dim() == 2, "step: expected mixer input (B, d_model), got ", x0.str());
  check_cpu(x0, "the mixer input");
  const int64_t B = x0.size(0), E = m.d_inner, N = m.d_state, R = m.dt_rank, W = m.d_conv;
  SERPENT_CHECK(state.conv.defined() && state.conv.shape() == Shape({B, E, W}) && state.ssm.defined() &&
                    state.ssm.shape() == Shape({B, E, N}),
                "step: the layer state does not fit a batch of ", B, ": expected conv [", B, ", ", E, ", ", W,
                "] and ssm [", B, ", ", E, ", ", N, "]");
  Tensor xz = linear(x0, m.in_proj.weight);  // (B, 2E)
  Tensor x = slice_last(xz, 0, E), z = slice_last(xz, E, E);
  Tensor xc = Tensor::empty({B, E}, x0.dtype());
  Tensor conv_weight = reshape(m.conv1d.weight, {E, W});
  dispatch_float(x0.dtype(), "causal_conv1d_step", [&](auto zero) {
    using T = decltype(zero);
    cpu::causal_conv1d_step<T>(state.conv.data<T>(), x.data<T>(), conv_weight.data<T>(),
                               m.conv1d.bias.defined() ? m.conv1d.bias.data<T>() : nullptr, xc.data<T>(), B, E, W,
                               /*silu=*/true);
  });
  Tensor dbl = linear(xc, m.x_proj.weight);                     // (B, R + 2N)
  Tensor dt = linear(slice_last(dbl, 0, R), m.dt_proj.weight);  // (B, E)
  Tensor Bm = slice_last(dbl, R, N), Cm = slice_last(dbl, R + N, N);
  Tensor A = scale(exp(m.A_log), -1.0);
  Tensor y = Tensor::empty({B, E}, x0.dtype());
  dispatch_float(x0.dtype(), "selective_scan_step", [&](auto zero) {
    using T = decltype(zero);
    cpu::selective_scan_step<T>(state.ssm.data<T>(), xc.data<T>(), dt.data<T>(), A.data<T>(), Bm.data<T>(),
                                Cm.data<T>(), m.D.data<T>(), z.data<T>(), m.dt_proj.bias.data<T>(), true, y.data<T>(),
                                B, E, N);
  });
  return linear(y, m.out_proj.weight);  // (B, D)
}

Tensor prefill(const MambaLM& model, const Tensor& ids, MambaInferenceState& state) {
  SERPENT_CHECK(ids.dim() == 2 && ids.numel() > 0, "prefill: expected prompt ids (B, L) with L >= 1, got ", ids.str());
  check_cpu(model.backbone().embeddings.weight, "the model");
  autograd::NoGradGuard no_grad;
  const auto& bb = model.backbone();
  state = init_inference_state(model, ids.size(0));
  Tensor h = bb.embeddings.forward(ids);  // (B, L, D)
  Tensor residual;
  for (size_t i = 0; i < bb.layers.size(); ++i) {
    auto [normed, residual_out] = bb.layers[i]->norm.forward(h, residual, model.compute_dtype());
    h = prefill(bb.layers[i]->mixer, normed, state.layers[i]);
    residual = residual_out;
  }
  Tensor normed = bb.norm_f.forward(last_position(h), last_position(residual)).first;  // (B, D)
  state.tokens = ids.size(1);
  return linear(normed, bb.embeddings.weight);  // tied lm_head: (B, V)
}

Tensor step(const MambaLM& model, const Tensor& ids, MambaInferenceState& state) {
  SERPENT_CHECK(ids.dim() == 1 && ids.size(0) == state.batch, "step: expected one token id per sequence, (",
                state.batch, "), got ", ids.str());
  SERPENT_CHECK(state.layers.size() == model.backbone().layers.size(), "step: the state has ", state.layers.size(),
                " layers but the model ", model.backbone().layers.size());
  check_cpu(model.backbone().embeddings.weight, "the model");
  autograd::NoGradGuard no_grad;
  const auto& bb = model.backbone();
  Tensor h = bb.embeddings.forward(ids);  // (B, D)
  Tensor residual;
  for (size_t i = 0; i < bb.layers.size(); ++i) {
    auto [normed, residual_out] = bb.layers[i]->norm.forward(h, residual, model.compute_dtype());
    h = step(bb.layers[i]->mixer, normed, state.layers[i]);
    residual = residual_out;
  }
  Tensor normed = bb.norm_f.forward(h, residual).first;
  ++state.tokens;
  return linear(normed, bb.embeddings.weight);  // (B, V)
}

}  // namespace serpent
