#include "layers/mamba.h"

#include <cmath>

#include "autograd/checkpoint.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/creation.h"

namespace serpent {

namespace {

// dt_proj.bias = softplus^-1(dt) for dt log-uniform in [dt_min, dt_max], floored at dt_init_floor,
// so that softplus(bias) starts in the reference's range.
Tensor init_dt_bias(const MambaConfig& cfg, Generator& gen, DType dtype) {
  const int64_t E = cfg.d_inner();
  Tensor draw = uniform({E}, std::log(cfg.dt_min), std::log(cfg.dt_max), gen, DType::f64);
  std::vector<double> bias(static_cast<size_t>(E));
  const double* u = draw.data<double>();
  for (int64_t e = 0; e < E; ++e) {
    const double dt = std::max(std::exp(u[e]), cfg.dt_init_floor);
    bias[size_t(e)] = dt + std::log(-std::expm1(-dt));
  }
  return from_vector(bias, {E}, dtype);
}

}  // namespace

MambaMixer::MambaMixer(const MambaConfig& cfg, Generator& gen, DType dtype)
    : d_inner(cfg.d_inner()),
      dt_rank(cfg.resolved_dt_rank()),
      d_state(cfg.d_state),
      d_conv(cfg.d_conv),
      in_proj(cfg.d_model, 2 * cfg.d_inner(), gen, dtype),
      conv1d(cfg.d_inner(), cfg.d_conv, cfg.conv_bias, gen, dtype),
      x_proj(cfg.d_inner(), cfg.resolved_dt_rank() + 2 * cfg.d_state, gen, dtype),
      dt_proj(cfg.resolved_dt_rank(), cfg.d_inner(), gen, dtype),
      out_proj(cfg.d_inner(), cfg.d_model, gen, dtype) {
  register_module("in_proj", &in_proj);
  register_module("conv1d", &conv1d);
  register_module("x_proj", &x_proj);
  register_module("dt_proj", &dt_proj);
  // dt_proj.weight ~ U(-R^-0.5, R^-0.5), which nn.Linear's default bound 1/sqrt(fan_in) already is.
  dt_proj.register_bias(init_dt_bias(cfg, gen, dtype));
  register_module("out_proj", &out_proj);
  scale_(out_proj.weight, 1.0 / std::sqrt(double(cfg.n_layer)));
  std::vector<double> a_log(size_t(d_inner * d_state));
  for (int64_t e = 0; e < d_inner; ++e)
    for (int64_t n = 0; n < d_state; ++n) a_log[size_t(e * d_state + n)] = std::log(double(n + 1));
  register_parameter("A_log", &A_log, from_vector(a_log, {d_inner, d_state}, dtype));
  register_parameter("D", &D, ones({d_inner}, dtype));
}

namespace {

// The last W time steps of x (B, L, E) as the conv's window (B, E, W), oldest first, zeros where
// the sequence is shorter than W.
Tensor conv_window(const Tensor& x, int64_t W) {
  const int64_t B = x.size(0), L = x.size(1), E = x.size(2);
  Tensor host = x.to(Device::cpu());
  Tensor window = zeros({B, E, W}, x.dtype());
  dispatch_float(x.dtype(), "conv_window", [&](auto zero) {
    using T = decltype(zero);
    const T* src = host.data<T>();
    T* dst = window.data<T>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t w = 0; w < W; ++w) {
        const int64_t t = L - W + w;
        if (t < 0) continue;
        for (int64_t e = 0; e < E; ++e) dst[(b * E + e) * W + w] = src[(b * L + t) * E + e];
      }
  });
  return window.to(x.device());
}

}  // namespace

Tensor MambaMixer::forward(const Tensor& x0, MambaLayerState* keep) const {
  SERPENT_CHECK(x0.dim() == 3, "MambaMixer: expected input (B, L, d_model), got ", x0.str());
  const int64_t B = x0.size(0), L = x0.size(1), E = d_inner, N = d_state, R = dt_rank;
  // The projections whose outputs are split ([x ; z], [dt ; B ; C]) run as one product per part
  // on row blocks of the weight (linear_rows), so every activation is contiguous and no split
  // copies are made.
  Tensor x0f = reshape(x0, {B * L, x0.size(2)});
  const std::vector<Tensor> xz = linear_rows(x0f, in_proj.weight, {E, E});
  const Tensor& x = xz[0];  // (B*L, E)
  const Tensor& z = xz[1];  // (B*L, E)
  if (keep) keep->conv = conv_window(reshape(x, {B, L, E}), d_conv);
  Tensor u = conv1d.forward(reshape(x, {B, L, E}), /*silu_activation=*/true);  // (B, L, E)
  Tensor uf = reshape(u, {B * L, E});
  const std::vector<Tensor> dbc = linear_rows(uf, x_proj.weight, {R, N, N});
  const Tensor& dt_low = dbc[0];               // (B*L, R)
  const Tensor& Bm = dbc[1];                   // (B*L, N)
  const Tensor& Cm = dbc[2];                   // (B*L, N)
  Tensor dt = linear(dt_low, dt_proj.weight);  // (B*L, E), no bias yet
  Tensor A = scale(exp(A_log), -1.0);          // (E, N)
  // The scan's backward computes dt again from dt_low (which dt_proj's node keeps for its weight
  // gradient) instead of keeping it: one small product per layer for one (B, L, E) activation.
  const RecomputeFn recompute_dt = [dt_low = dt_low.detach(), w = dt_proj.weight, B, L, E] {
    autograd::NoGradGuard no_grad;
    return reshape(linear(dt_low, w), {B, L, E});
  };
  ScanOutput scan = selective_scan(u, reshape(dt, {B, L, E}), A, reshape(Bm, {B, L, N}), reshape(Cm, {B, L, N}), D,
                                   reshape(z, {B, L, E}), dt_proj.bias, true, recompute_dt);
  if (keep) keep->ssm = scan.last_state;
  Tensor out = linear(reshape(scan.y, {B * L, E}), out_proj.weight);  // (B*L, d_model)
  return reshape(out, {B, L, x0.size(2)});
}

MambaBlock::MambaBlock(const MambaConfig& cfg, Generator& gen, DType dtype)
    : norm(cfg.d_model, cfg.norm_epsilon, dtype), mixer(cfg, gen, dtype) {
  register_module("norm", &norm);
  register_module("mixer", &mixer);
}

std::pair<Tensor, Tensor> MambaBlock::forward(const Tensor& h, const Tensor& residual, DType compute_dtype) const {
  auto [normed, residual_out] = norm.forward(h, residual, compute_dtype);
  return {mixer.forward(normed), residual_out};
}

MambaLM::Backbone::Backbone(const MambaConfig& cfg, Generator& gen, DType dtype)
    : embeddings(cfg.padded_vocab(), cfg.d_model, gen, dtype), norm_f(cfg.d_model, cfg.norm_epsilon, dtype) {
  register_module("embeddings", &embeddings);
  for (int64_t i = 0; i < cfg.n_layer; ++i) {
    layers.push_back(std::make_unique<MambaBlock>(cfg, gen, dtype));
    register_module("layers." + std::to_string(i), layers.back().get());
  }
  register_module("norm_f", &norm_f);
}

MambaLM::MambaLM(const MambaConfig& cfg, Generator& gen, DType dtype)
    : cfg_((cfg.validate(), cfg)), backbone_(cfg, gen, dtype), compute_dtype_(dtype) {
  register_module("backbone", &backbone_);
}

Tensor MambaLM::final_hidden(const Tensor& ids) const {
  SERPENT_CHECK(ids.dim() == 2, "MambaLM: expected token ids (B, L), got ", ids.str());
  SERPENT_CHECK(ids.numel() > 0, "MambaLM: empty batch ", ids.str(), "; expected at least one token");
  const DType param_dtype = backbone_.embeddings.weight.dtype();
  SERPENT_CHECK(
      compute_dtype_ == param_dtype ||
          (compute_dtype_ == DType::bf16 && param_dtype == DType::f32 && backbone_.embeddings.weight.is_cuda()),
      "MambaLM: compute dtype ", dtype_name(compute_dtype_), " with ", dtype_name(param_dtype), " parameters on ",
      backbone_.embeddings.weight.device().str(), "; bf16 mixed precision needs f32 parameters on a GPU");
  Tensor h = backbone_.embeddings.forward(ids);  // (B, L, d_model), parameter dtype
  Tensor residual;
  for (const auto& layer : backbone_.layers) {
    if (!recompute_blocks_) {
      std::tie(h, residual) = layer->forward(h, residual, compute_dtype_);
      continue;
    }
    const MambaBlock* block = layer.get();
    const DType dt = compute_dtype_;
    std::vector<Tensor> out = autograd::checkpoint(
        [block, dt](const std::vector<Tensor>& in) {
          auto [mixed, res] = block->forward(in[0], in[1], dt);
          return std::vector<Tensor>{mixed, res};
        },
        {h, residual});
    h = out[0];
    residual = out[1];
  }
  Tensor normed = backbone_.norm_f.forward(h, residual, compute_dtype_).first;
  return reshape(normed, {ids.numel(), cfg_.d_model});
}

Tensor MambaLM::forward(const Tensor& ids) const {
  Tensor logits = linear(final_hidden(ids), backbone_.embeddings.weight);  // tied lm_head
  if (logits.dtype() != backbone_.embeddings.weight.dtype()) logits = cast(logits, backbone_.embeddings.weight.dtype());
  return reshape(logits, {ids.size(0), ids.size(1), cfg_.padded_vocab()});
}

Tensor MambaLM::loss(const Tensor& ids, const Tensor& targets, int64_t ignore_index) const {
  SERPENT_CHECK(targets.shape() == ids.shape(), "MambaLM::loss: targets ", targets.str(), " do not match ids ",
                ids.str());
  return linear_cross_entropy(final_hidden(ids), backbone_.embeddings.weight, reshape(targets, {-1}), ignore_index);
}

}  // namespace serpent
