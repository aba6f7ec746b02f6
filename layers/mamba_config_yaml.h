// MambaConfig <-> the `model:` section of a config text (YAML), through the model's key table
// (layers/mamba_config.h) and the shared codec (core/key_table.h): the same key names, types,
// ranges and messages as the training config, which reads its model section the same way.
// Checkpoints written by import-hf carry only this section.
#pragma once

#include <string>
#include <vector>

#include "layers/mamba_config.h"

namespace serpent {

// Every key of the model section without its "model." prefix, in the order they are written.
const std::vector<std::string>& mamba_config_keys();

// A config text holding only the model section: "model:\n  d_model: 768\n  ...". Floats are
// written in their shortest exact form with a '.' so that YAML 1.1 readers (PyYAML) also see
// numbers: 1e-05 is written 1.0e-05.
std::string mamba_config_yaml_text(const MambaConfig& cfg);

// Parses a whole config text and reads its model section: absent keys keep MambaConfig's
// defaults; an unknown key (with the nearest valid key suggested), a value of the wrong type or
// out of range throws serpent::Error naming `source` ("checkpoint runs/x/step_00000100.h5") and
// "model.<key>", as does a text that is not YAML or has no model section. The combinations are
// not checked here: call validate().
MambaConfig mamba_config_from_config_text(const std::string& text, const std::string& source);

}  // namespace serpent
