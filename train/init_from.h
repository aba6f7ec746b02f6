// train.init_from: a new run that starts from trained weights (a Serpent checkpoint, with or
// without optimizer state, or a Hugging Face MambaForCausalLM folder) instead of a random init:
// step 0, a new optimizer, the config's schedule (docs/TRAINING.md, "Starting from a trained
// model").
#pragma once

#include <string>
#include <vector>

#include "layers/mamba_config.h"
#include "layers/module.h"

namespace serpent {

// The model a source holds, read cheaply (the config only): what a config without a model
// section trains.
MambaConfig init_source_model(const std::string& path);

// The source's weights under our parameter names (f32, cpu), checked against the shapes of
// `model`: every parameter whose shape differs, is missing or is extra is named in one error.
NamedTensors read_init_weights(const std::string& path, const MambaConfig& model);

}  // namespace serpent
