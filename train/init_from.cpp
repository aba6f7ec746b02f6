#include "train/init_from.h"

#include <filesystem>
#include <map>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/hf.h"
#include "layers/mamba_config_yaml.h"

namespace fs = std::filesystem;

namespace serpent {

namespace {

bool is_hf_folder(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

void check_exists(const std::string& path) {
  std::error_code ec;
  SERPENT_CHECK(fs::exists(path, ec), "train.init_from ", path,
                " does not exist; give a serpent checkpoint (.h5) or a Hugging Face model folder");
}

}  // namespace

MambaConfig init_source_model(const std::string& path) {
  check_exists(path);
  if (is_hf_folder(path)) return read_hf_dir(path).config;
  SERPENT_CHECK(is_checkpoint_file(path), "train.init_from ", path,
                " is neither a serpent checkpoint nor a Hugging Face model folder");
  return mamba_config_from_config_text(read_checkpoint_summary(path).config_yaml, "checkpoint " + path);
}

NamedTensors read_init_weights(const std::string& path, const MambaConfig& model) {
  check_exists(path);
  NamedTensors weights;
  if (is_hf_folder(path)) {
    weights = read_hf_dir(path).tensors;
  } else {
    SERPENT_CHECK(is_checkpoint_file(path), "train.init_from ", path,
                  " is neither a serpent checkpoint nor a Hugging Face model folder");
    weights = load_checkpoint(path, CheckpointParts::model_only).model;
  }
  // Shapes, not config keys, decide: a vocabulary padded differently or dt_rank written as a
  // number instead of auto is the same model when every tensor has the same shape.
  std::map<std::string, Shape> have;
  for (const auto& [name, t] : weights) have[name] = t.shape();
  std::vector<std::string> problems;
  for (const auto& [name, shape] : mamba_parameter_shapes(model)) {
    auto it = have.find(name);
    if (it == have.end())
      problems.push_back(name + " is missing");
    else if (it->second != shape)
      problems.push_back(str_cat(name, ": ", shape_str(it->second), " there, ", shape_str(shape), " in the config"));
    if (it != have.end()) have.erase(it);
  }
  for (const auto& [name, shape] : have)
    problems.push_back(name + " " + shape_str(shape) + " is not in the config's model");
  if (!problems.empty()) {
    std::string list;
    for (const std::string& p : problems) list += (list.empty() ? "" : "; ") + p;
    fail("train.init_from ", path, " does not fit the config's model (", model.summary(), "): ", list,
         "; leave the model section out to train the model it holds");
  }
  return weights;
}

}  // namespace serpent
