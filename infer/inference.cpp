#include "infer/inference.h"

#include <yaml-cpp/yaml.h>

#include "io/checkpoint.h"
#include "layers/mamba_config_yaml.h"

namespace serpent {

std::optional<std::string> CheckpointModel::config_value(const std::string& section, const std::string& key) const {
  try {
    const YAML::Node root = YAML::Load(config_yaml);
    if (root.IsMap() && root[section] && root[section].IsMap() && root[section][key] && root[section][key].IsScalar())
      return root[section][key].Scalar();
  } catch (const YAML::Exception&) {
  }
  return std::nullopt;
}

CheckpointModel load_checkpoint_model(const std::string& path) {
  Checkpoint c = load_checkpoint(path, CheckpointParts::model_only);
  const MambaConfig cfg = mamba_config_from_config_text(c.config_yaml, "checkpoint " + path);
  CheckpointModel out;
  Generator gen(0);  // the initial values are overwritten by the checkpoint's
  out.model = std::make_unique<MambaLM>(cfg, gen);
  out.model->load_state_dict(c.model);
  out.config_yaml = std::move(c.config_yaml);
  return out;
}

}  // namespace serpent
