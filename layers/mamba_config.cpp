#include "layers/mamba_config.h"

#include "core/error.h"

namespace serpent {

void MambaConfig::validate() const {
  auto positive = [](const char* name, int64_t v) {
    SERPENT_CHECK(v > 0, "model.", name, " must be positive, got ", v);
  };
  positive("d_model", d_model);
  positive("n_layer", n_layer);
  positive("vocab_size", vocab_size);
  positive("d_state", d_state);
  positive("d_conv", d_conv);
  positive("expand", expand);
  positive("pad_vocab_size_multiple", pad_vocab_size_multiple);
  SERPENT_CHECK(dt_rank >= 0, "model.dt_rank must be positive or 0 (auto), got ", dt_rank);
  SERPENT_CHECK(dt_min > 0 && dt_max >= dt_min, "model.dt_min and model.dt_max must satisfy 0 < dt_min <= dt_max, got ",
                dt_min, " and ", dt_max);
  SERPENT_CHECK(dt_init_floor > 0, "model.dt_init_floor must be positive, got ", dt_init_floor);
  SERPENT_CHECK(norm_epsilon > 0, "model.norm_epsilon must be positive, got ", norm_epsilon);
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
