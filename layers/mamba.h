// The Mamba-1 language model (docs/DESIGN.md, "The model"), parameter names exactly Hugging Face
// MambaForCausalLM's: backbone.embeddings, backbone.layers.i.{norm, mixer.*}, backbone.norm_f;
// lm_head is tied to the embedding and so is not a separate parameter.
#pragma once

#include <memory>
#include <vector>

#include "layers/layers.h"
#include "layers/mamba_config.h"

namespace serpent {

// A layer's recurrent state for generation (infer/mamba_step.h).
struct MambaLayerState {
  Tensor conv;  // (B, E, W): the conv's last W inputs, oldest first (zeros before the first token)
  Tensor ssm;   // (B, E, N): the selective scan's state after the last token
};

class MambaMixer : public Module {
 public:
  MambaMixer(const MambaConfig& cfg, Generator& gen, DType dtype);
  // (B, L, d_model) -> (B, L, d_model). With `keep`, also leaves there the states after the last
  // position (the prefill of generation).
  Tensor forward(const Tensor& x, MambaLayerState* keep = nullptr) const;

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
  // (h, residual) -> (mixer output, residual + h); residual undefined in the first block. The
  // mixer runs in compute_dtype (the residual stream keeps its own dtype).
  std::pair<Tensor, Tensor> forward(const Tensor& h, const Tensor& residual, DType compute_dtype) const;

  RMSNorm norm;
  MambaMixer mixer;
};

class MambaLM : public Module {
 public:
  // Parameters initialized as in docs/DESIGN.md, "Initialization", from gen, in dtype, on the cpu.
  MambaLM(const MambaConfig& cfg, Generator& gen, DType dtype = DType::f32);

  Tensor forward(const Tensor& ids) const;  // ids (B, L) -> logits (B, L, padded vocab), parameter dtype
  // Mean next-token cross-entropy: ids (B, L), targets (B, L) (ignore_index skipped). Computed
  // by linear_cross_entropy, so the (B * L, V) logits are never held at once.
  Tensor loss(const Tensor& ids, const Tensor& targets, int64_t ignore_index = -100) const;

  const MambaConfig& config() const { return cfg_; }
  // Mixed precision: with bf16, activations and matmul operands are bf16 while parameters,
  // gradients and the residual stream stay f32 (GPU only). Default: the parameters' dtype.
  void set_compute_dtype(DType dtype) { compute_dtype_ = dtype; }
  DType compute_dtype() const { return compute_dtype_; }
  // train.recompute full: each block keeps only its inputs (h and the residual stream) and runs
  // again in backward (autograd/checkpoint.h). Same gradients, one more forward of the blocks.
  void set_recompute_blocks(bool on) { recompute_blocks_ = on; }
  bool recompute_blocks() const { return recompute_blocks_; }

 private:
  class Backbone : public Module {
   public:
    Backbone(const MambaConfig& cfg, Generator& gen, DType dtype);
    Embedding embeddings;
    std::vector<std::unique_ptr<MambaBlock>> layers;
    RMSNorm norm_f;
  };

  // The normalized final hidden states (B * L, d_model) in the compute dtype.
  Tensor final_hidden(const Tensor& ids) const;

  MambaConfig cfg_;
  Backbone backbone_;
  DType compute_dtype_;
  bool recompute_blocks_ = false;

 public:
  Backbone& backbone() { return backbone_; }
  const Backbone& backbone() const { return backbone_; }
};

}  // namespace serpent
