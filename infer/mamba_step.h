// Recurrent inference for Mamba (generation): per-layer state, a prefill that runs the
// full-sequence forward over a prompt and keeps the final states, and a step that takes one
// token per sequence. A step costs the same for every token: the conv keeps a window of its last
// d_conv inputs and the SSM a (d_inner, d_state) state per sequence, instead of the whole
// history. Everything runs on the cpu without recording a graph.
//
// Shapes: B sequences, L prompt tokens, D d_model, E d_inner, N d_state, W d_conv, V padded vocab.
#pragma once

#include <vector>

#include "layers/mamba.h"

namespace serpent {

struct MambaInferenceState {
  std::vector<MambaLayerState> layers;  // one per block
  int64_t batch = 0;
  int64_t tokens = 0;  // tokens consumed per sequence so far
};

// The state before any token: zeros, in the model's dtype.
MambaInferenceState init_inference_state(const MambaLM& model, int64_t batch);

// Runs the prompt ids (B, L) through the full-sequence forward from an empty state, leaves in
// `state` the states after its last token, and returns that token's logits (B, V).
Tensor prefill(const MambaLM& model, const Tensor& ids, MambaInferenceState& state);
// One token per sequence: ids (B) -> logits (B, V); the state advances by one token.
Tensor step(const MambaLM& model, const Tensor& ids, MambaInferenceState& state);

// The same for one mixer: x (B, L, D) -> (B, L, D) from an empty state, and x (B, D) -> (B, D).
Tensor prefill(const MambaMixer& mixer, const Tensor& x, MambaLayerState& state);
Tensor step(const MambaMixer& mixer, const Tensor& x, MambaLayerState& state);

}  // namespace serpent
