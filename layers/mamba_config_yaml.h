// MambaConfig <-> the `model:` section of a run config (YAML), with the reference
// implementation's key names: d_model, n_layer, vocab_size, d_state, d_conv, expand,
// dt_rank ("auto" or an integer), dt_min, dt_max, dt_init_floor, conv_bias, bias, rms_norm,
// norm_epsilon, residual_in_fp32, tie_embeddings, pad_vocab_size_multiple.
// The full config system builds on these; checkpoints written by import-hf carry only this section.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "layers/mamba_config.h"

namespace serpent {

// Every key of the model section, in the order they are written.
const std::vector<std::string>& mamba_config_keys();

// A mapping with every key. Floats are written in their shortest exact form with a '.' so that
// YAML 1.1 readers (PyYAML) also see numbers: 1e-05 is written 1.0e-05.
YAML::Node mamba_config_to_yaml(const MambaConfig& cfg);

// Reads a model mapping: absent keys keep MambaConfig's defaults; an unknown key (with the nearest
// valid key suggested) or a value of the wrong type throws serpent::Error naming "model.<key>".
// Ranges are not checked here: call validate().
MambaConfig mamba_config_from_yaml(const YAML::Node& model);

// A config text holding only the model section: "model:\n  d_model: 768\n  ...".
std::string mamba_config_yaml_text(const MambaConfig& cfg);

// Parses a whole config text and reads its model section; `source` names the text in errors
// ("checkpoint runs/x/step_00000100.h5"). Throws when the text is not YAML or has no model section.
MambaConfig mamba_config_from_config_text(const std::string& text, const std::string& source);

// The closest of `candidates` to `word` by edit distance, for "did you mean" hints.
std::string nearest_key(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace serpent
