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

std::string MambaConfig::summary() const {
  return str_cat("d_model ", d_model, ", n_layer ", n_layer, ", d_inner ", d_inner(), ", d_state ", d_state,
                 ", d_conv ", d_conv, ", dt_rank ", resolved_dt_rank(), ", vocab ", vocab_size, " (padded ",
                 padded_vocab(), ")");
}

}  // namespace serpent
