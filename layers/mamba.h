// The Mamba-1 language model (DESIGN.md §3), parameter names exactly Hugging Face
// MambaForCausalLM's: backbone.embeddings, backbone.layers.i.{norm, mixer.*}, backbone.norm_f;
// lm_head is tied to the embedding and so is not a separate parameter.
#pragma once

#include <memory>
#include <vector>

#include "layers/layers.h"
#include "layers/mamba_config.h"

namespace serpent {

class MambaMixer : public Module {
 public:
  MambaMixer(const MambaConfig& cfg, Generator& gen, DType dtype);
  Tensor forward(const Tensor& x) const;  // (B, L, d_model) -> (B, L, d_model)

  int64_t d_inner, dt_rank, d_state, d_conv;
  Linear in_proj;       // (2 d_inner, d_model): rows [x ; z]
  CausalConv1d conv1d;  // (d_inner, 1, d_conv)
  Linear x_proj;        // (dt_rank + 2 d_state, d_inner): rows [dt ; B ; C]
  Linear dt_proj;       // (d_inner, dt_rank) + bias (d_inner), the bias applied inside the scan
  Linear out_proj;      // (d_model, d_inner)
  Tensor A_log;         // (d_inner, d_state)
  Tensor D;             // (d_inner)
};

class MambaBlock : public Module {
 public:
  MambaBlock(const MambaConfig& cfg, Generator& gen, DType dtype);
  // (h, residual) -> (mixer output, residual + h); residual undefined in the first block.
  std::pair<Tensor, Tensor> forward(const Tensor& h, const Tensor& residual) const;

  RMSNorm norm;
  MambaMixer mixer;
};

class MambaLM : public Module {
 public:
  // Parameters initialized as in DESIGN.md §3 from gen, in dtype, on the cpu.
  MambaLM(const MambaConfig& cfg, Generator& gen, DType dtype = DType::f32);

  Tensor forward(const Tensor& ids) const;  // ids (B, L) -> logits (B, L, padded vocab)
  // Mean next-token cross-entropy: ids (B, L), targets (B, L) (ignore_index skipped).
  Tensor loss(const Tensor& ids, const Tensor& targets, int64_t ignore_index = -100) const;

  const MambaConfig& config() const { return cfg_; }

 private:
  class Backbone : public Module {
   public:
    Backbone(const MambaConfig& cfg, Generator& gen, DType dtype);
    Embedding embeddings;
    std::vector<std::unique_ptr<MambaBlock>> layers;
    RMSNorm norm_f;
  };

  MambaConfig cfg_;
  Backbone backbone_;

 public:
  Backbone& backbone() { return backbone_; }
  const Backbone& backbone() const { return backbone_; }
};

}  // namespace serpent
