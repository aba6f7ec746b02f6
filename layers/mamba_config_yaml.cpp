#include "layers/mamba_config_yaml.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "core/error.h"

namespace serpent {

namespace {

constexpr size_t kPrefix = sizeof("model.") - 1;

struct ModelTable {
  template <class M, class F>
  void operator()(M& m, F&& f) const {
    for_each_model_key(m, f);
  }
};

const std::vector<std::string>& dotted_keys() {
  static const MambaConfig defaults;
  static const std::vector<std::string> keys = keys::keys_of(defaults, ModelTable{});
  return keys;
}

}  // namespace

const std::vector<std::string>& mamba_config_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k;
    for (const std::string& d : dotted_keys()) k.push_back(d.substr(kPrefix));
    return k;
  }();
  return keys;
}

std::string mamba_config_yaml_text(const MambaConfig& cfg) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  for_each_model_key(cfg, [&](const char* key, const auto& member, const keys::Spec& spec) {
    out << YAML::Key << key + kPrefix << YAML::Value;
    keys::emit(out, member, spec);
  });
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

MambaConfig mamba_config_from_config_text(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail(source, ": the config is not valid YAML: ", e.what());
  }
  SERPENT_CHECK(root.IsMap() && root["model"], source, ": the config has no model section");
  const YAML::Node model = root["model"];
  SERPENT_CHECK(model.IsMap(), source, ": section 'model' must be a map of keys, got ", keys::describe(model));
  MambaConfig cfg;
  std::vector<std::string> seen;
  for (const auto& kv : model) {
    const std::string key = "model." + kv.first.Scalar();
    SERPENT_CHECK(std::find(seen.begin(), seen.end(), key) == seen.end(), source, ": key ", key,
                  " appears twice; keep one");
    seen.push_back(key);
    if (!keys::assign_key(cfg, ModelTable{}, source, key, kv.second)) keys::unknown_key(source, key, dotted_keys());
  }
  return cfg;
}

}  // namespace serpent
