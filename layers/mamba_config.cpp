#include "layers/mamba_config.h"

#include "core/error.h"

namespace serpent {

void MambaConfig::validate() const {
  for_each_model_key(
      *this, [](const char* key, const auto& member, const keys::Spec& spec) { keys::check_range(key, member, spec); });
  SERPENT_CHECK(dt_max >= dt_min, "model.dt_min and model.dt_max must satisfy 0 < dt_min <= dt_max, got ", dt_min,
                " and ", dt_max);
  SERPENT_CHECK(!bias, "model.bias: linear layers with bias are not supported (the Mamba models have none)");
  SERPENT_CHECK(rms_norm, "model.rms_norm: only RMSNorm is supported (LayerNorm is not implemented)");
  SERPENT_CHECK(tie_embeddings, "model.tie_embeddings: only tied input and output embeddings are supported");
}

const keys::Spec& model_key_spec(const std::string& key) {
  static const std::vector<std::pair<std::string, keys::Spec>> specs = [] {
    std::vector<std::pair<std::string, keys::Spec>> out;
    const MambaConfig defaults;
    for_each_model_key(defaults, [&](const char* k, const auto&, const keys::Spec& s) { out.emplace_back(k, s); });
    return out;
  }();
  for (const auto& [k, s] : specs)
    if (k == key) return s;
  fail("model_key_spec: no model key ", key);
}

std::vector<std::string> model_differences(const MambaConfig& a, const MambaConfig& b) {
  auto texts = [](MambaConfig c) {
    if (c.dt_rank == 0) c.dt_rank = c.resolved_dt_rank();
    std::vector<std::pair<std::string, std::string>> out;
    for_each_model_key(
        c, [&](const char* key, const auto& v, const keys::Spec& s) { out.emplace_back(key, keys::value_text(v, s)); });
    return out;
  };
  const auto ta = texts(a), tb = texts(b);
  std::vector<std::string> diffs;
  for (size_t i = 0; i < ta.size(); ++i)
    if (ta[i].second != tb[i].second) diffs.push_back(ta[i].first + ": " + ta[i].second + " vs " + tb[i].second);
  return diffs;
}

int64_t MambaConfig::num_parameters() const {
  const int64_t D = d_model, E = d_inner(), N = d_state, R = resolved_dt_rank(), W = d_conv;
  const int64_t mixer = 2 * E * D                         // in_proj
                        + E * W + (conv_bias ? E : 0)     // conv1d
                        + (R + 2 * N) * E                 // x_proj
                        + E * R + E                       // dt_proj weight and bias
                        + E * N + E                       // A_log, D
                        + D * E;                          // out_proj
  return padded_vocab() * D + n_layer * (D + mixer) + D;  // embedding, layers (norm + mixer), norm_f
}

double MambaConfig::training_flops_per_token() const {
  const double D = double(d_model), E = double(d_inner()), R = double(resolved_dt_rank());
  const double N = double(d_state), V = double(padded_vocab());
  const double per_layer = 2 * E * D + (R + 2 * N) * E + E * R + D * E;
  return 6.0 * (double(n_layer) * per_layer + V * D);
}

std::string MambaConfig::summary() const {
  return str_cat("d_model ", d_model, ", n_layer ", n_layer, ", d_inner ", d_inner(), ", d_state ", d_state,
                 ", d_conv ", d_conv, ", dt_rank ", resolved_dt_rank(), ", vocab ", vocab_size, " (padded ",
                 padded_vocab(), ")");
}

}  // namespace serpent
