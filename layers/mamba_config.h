// Hyperparameters of a Mamba-1 language model, with the reference implementation's names and
// defaults (DESIGN.md §3).
#pragma once

#include <cstdint>
#include <string>

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
  // Throws serpent::Error naming the first field out of range, or a combination this
  // implementation does not support (bias, LayerNorm, untied embeddings).
  void validate() const;
  std::string summary() const;

  bool operator==(const MambaConfig&) const = default;
};

}  // namespace serpent
