// Hyperparameters of a Mamba-1 language model, with the reference implementation's names and
// defaults (docs/DESIGN.md, "The model").
#pragma once

#include <cstdint>
#include <string>

#include "core/key_table.h"

namespace serpent {

struct MambaConfig {
  int64_t d_model = 768;
  int64_t n_layer = 24;
  int64_t vocab_size = 50277;
  int64_t d_state = 16;
  int64_t d_conv = 4;
  int64_t expand = 2;
  int64_t dt_rank = 0;  // 0 means "auto": ceil(d_model / 16)
  double dt_min = 1e-3;
  double dt_max = 0.1;
  double dt_init_floor = 1e-4;
  bool conv_bias = true;
  bool bias = false;
  bool rms_norm = true;
  double norm_epsilon = 1e-5;
  bool residual_in_fp32 = true;
  bool tie_embeddings = true;
  int64_t pad_vocab_size_multiple = 8;

  int64_t d_inner() const { return expand * d_model; }
  int64_t resolved_dt_rank() const { return dt_rank > 0 ? dt_rank : (d_model + 15) / 16; }
  int64_t padded_vocab() const {
    const int64_t m = pad_vocab_size_multiple > 0 ? pad_vocab_size_multiple : 1;
    return (vocab_size + m - 1) / m * m;
  }
  // Throws serpent::Error naming the first key out of its range (the table below), or a
  // combination this implementation does not support (bias, LayerNorm, untied embeddings).
  void validate() const;
  std::string summary() const;

  bool operator==(const MambaConfig&) const = default;
};

// The one table of the model section's keys, in the order they are written: f(key, member, spec)
// with key the dotted path ("model.d_model"), member a reference into m (its type is the key's
// type, MambaConfig's initializer its default) and spec its range (core/key_table.h). M is
// MambaConfig or const MambaConfig. The training config reads and writes its model section
// through this table (train/config.cpp).
template <class M, class F>
void for_each_model_key(M& m, F&& f) {
  using namespace keys;
  f("model.d_model", m.d_model, at_least(1));
  f("model.n_layer", m.n_layer, at_least(1));
  f("model.vocab_size", m.vocab_size, at_least(1));
  f("model.pad_vocab_size_multiple", m.pad_vocab_size_multiple, at_least(1));
  f("model.d_state", m.d_state, at_least(1));
  f("model.d_conv", m.d_conv, at_least(1));
  f("model.expand", m.expand, at_least(1));
  f("model.dt_rank", m.dt_rank, rank_or_auto());
  f("model.dt_min", m.dt_min, positive());
  f("model.dt_max", m.dt_max, positive());
  f("model.dt_init_floor", m.dt_init_floor, positive());
  f("model.conv_bias", m.conv_bias, any());
  f("model.bias", m.bias, any());
  f("model.rms_norm", m.rms_norm, any());
  f("model.norm_epsilon", m.norm_epsilon, positive());
  f("model.residual_in_fp32", m.residual_in_fp32, any());
  f("model.tie_embeddings", m.tie_embeddings, any());
}

}  // namespace serpent
