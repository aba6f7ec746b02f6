// Hyperparameters of a Mamba-1 language model, with the reference implementation's names and
// defaults (docs/DESIGN.md, "The model").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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
  // The parameters MambaLM(*this) has, counted from the shapes; call on a validated config (the
  // ranges keep it exact in int64).
  int64_t num_parameters() const;
  // Matmul FLOPs per token of one training step, the numerator of MFU: the four mixer projections
  // per layer and the tied lm_head, 2 per multiply-add forward and twice that backward (a
  // forward alone is a third). The scan, conv and norms add well under 1% and are left out, as
  // is usual for MFU.
  double training_flops_per_token() const;
  std::string summary() const;

  bool operator==(const MambaConfig&) const = default;
};

// The one table of the model section's keys, in the order they are written: f(key, member, spec)
// with key the dotted path ("model.d_model"), member a reference into m (its type is the key's
// type, MambaConfig's initializer its default) and spec its range (core/key_table.h). M is
// MambaConfig or const MambaConfig. The training config reads and writes its model section
// through this table (train/config.cpp).
//
// The upper bounds are far beyond any Mamba model (the largest published has d_model 2560 and
// 64 layers) and keep every derived size within int64: d_inner <= 2^22, the largest weight
// (in_proj, 2 d_inner x d_model) <= 2^39 elements, the whole model below 2^50.
// Every key whose value differs between two models, as "model.norm_epsilon: 1.0e-05 vs 0.1"
// (a's value first). dt_rank auto and the number it resolves to count as the same.
std::vector<std::string> model_differences(const MambaConfig& a, const MambaConfig& b);

// The range of one key of the table ("model.d_model"); throws for a key it does not have.
const keys::Spec& model_key_spec(const std::string& key);

template <class M, class F>
void for_each_model_key(M& m, F&& f) {
  using namespace keys;
  f("model.d_model", m.d_model, interval(1, 65536, false, false));
  f("model.n_layer", m.n_layer, interval(1, 1024, false, false));
  f("model.vocab_size", m.vocab_size, interval(1, 1 << 24, false, false));
  f("model.pad_vocab_size_multiple", m.pad_vocab_size_multiple, interval(1, 65536, false, false));
  f("model.d_state", m.d_state, interval(1, 1024, false, false));
  f("model.d_conv", m.d_conv, interval(1, 256, false, false));
  f("model.expand", m.expand, interval(1, 64, false, false));
  f("model.dt_rank", m.dt_rank, rank_or_auto(65536));
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
