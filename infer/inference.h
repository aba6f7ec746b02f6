// A trained model read back from a checkpoint for `serpent eval` and `serpent generate`, with
// the values of the run's config that those commands default to.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "layers/mamba.h"

namespace serpent {

struct CheckpointModel {
  std::unique_ptr<MambaLM> model;  // f32, on the cpu
  std::string config_yaml;         // the checkpoint's config text

  // A scalar of the checkpoint's config ("data", "path"), or nothing when the config does not
  // set it (a model-only checkpoint made by import-hf carries only the model section).
  std::optional<std::string> config_value(const std::string& section, const std::string& key) const;
};

// Reads and verifies the model part of a checkpoint (the optimizer state is not needed).
CheckpointModel load_checkpoint_model(const std::string& path);

}  // namespace serpent
