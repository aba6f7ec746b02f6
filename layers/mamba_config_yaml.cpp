#include "layers/mamba_config_yaml.h"

#include <algorithm>
#include <charconv>
#include <functional>

#include "core/error.h"

namespace serpent {

namespace {

// Shortest text that reads back as exactly v, with a '.' before any exponent.
std::string float_text(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, end);
  if (s.find_first_of(".ein") != std::string::npos && s.find('.') == std::string::npos) {
    const size_t e = s.find('e');
    if (e != std::string::npos) s.insert(e, ".0");
  } else if (s.find_first_of(".ein") == std::string::npos) {
    s += ".0";
  }
  return s;
}

std::string scalar_text(const YAML::Node& n) {
  return n.IsScalar() ? n.Scalar() : "(a non-scalar value)";
}

template <class T>
T read_as(const YAML::Node& n, const std::string& key, const char* expected) {
  SERPENT_CHECK(n.IsScalar(), "model.", key, ": expected ", expected, ", got ", scalar_text(n));
  try {
    return n.as<T>();
  } catch (const YAML::Exception&) {
    fail("model.", key, ": expected ", expected, ", got '", n.Scalar(), "'");
  }
}

// One key: how to write it and how to read it.
struct Field {
  std::string key;
  std::function<void(YAML::Node&, const MambaConfig&)> write;
  std::function<void(const YAML::Node&, MambaConfig&)> read;
};

Field int_field(const char* key, int64_t MambaConfig::*m) {
  return {key, [=](YAML::Node& n, const MambaConfig& c) { n[key] = c.*m; },
          [=](const YAML::Node& n, MambaConfig& c) { c.*m = read_as<int64_t>(n, key, "an integer"); }};
}
Field float_field(const char* key, double MambaConfig::*m) {
  return {key, [=](YAML::Node& n, const MambaConfig& c) { n[key] = float_text(c.*m); },
          [=](const YAML::Node& n, MambaConfig& c) { c.*m = read_as<double>(n, key, "a number"); }};
}
Field bool_field(const char* key, bool MambaConfig::*m) {
  return {key, [=](YAML::Node& n, const MambaConfig& c) { n[key] = c.*m; },
          [=](const YAML::Node& n, MambaConfig& c) { c.*m = read_as<bool>(n, key, "true or false"); }};
}

const std::vector<Field>& fields() {
  static const std::vector<Field> all = {
      int_field("d_model", &MambaConfig::d_model),
      int_field("n_layer", &MambaConfig::n_layer),
      int_field("vocab_size", &MambaConfig::vocab_size),
      int_field("pad_vocab_size_multiple", &MambaConfig::pad_vocab_size_multiple),
      int_field("d_state", &MambaConfig::d_state),
      int_field("d_conv", &MambaConfig::d_conv),
      int_field("expand", &MambaConfig::expand),
      {"dt_rank",
       [](YAML::Node& n, const MambaConfig& c) {
         if (c.dt_rank > 0)
           n["dt_rank"] = c.dt_rank;
         else
           n["dt_rank"] = "auto";
       },
       [](const YAML::Node& n, MambaConfig& c) {
         c.dt_rank = n.IsScalar() && n.Scalar() == "auto" ? 0 : read_as<int64_t>(n, "dt_rank", "an integer or auto");
       }},
      float_field("dt_min", &MambaConfig::dt_min),
      float_field("dt_max", &MambaConfig::dt_max),
      float_field("dt_init_floor", &MambaConfig::dt_init_floor),
      bool_field("conv_bias", &MambaConfig::conv_bias),
      bool_field("bias", &MambaConfig::bias),
      bool_field("rms_norm", &MambaConfig::rms_norm),
      float_field("norm_epsilon", &MambaConfig::norm_epsilon),
      bool_field("residual_in_fp32", &MambaConfig::residual_in_fp32),
      bool_field("tie_embeddings", &MambaConfig::tie_embeddings),
  };
  return all;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

const std::vector<std::string>& mamba_config_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k;
    for (const Field& f : fields()) k.push_back(f.key);
    return k;
  }();
  return keys;
}

std::string nearest_key(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& c : candidates)
    if (size_t d = edit_distance(word, c); d < best_d) best_d = d, best = c;
  return best;
}

YAML::Node mamba_config_to_yaml(const MambaConfig& cfg) {
  YAML::Node n(YAML::NodeType::Map);
  for (const Field& f : fields()) f.write(n, cfg);
  return n;
}

MambaConfig mamba_config_from_yaml(const YAML::Node& model) {
  SERPENT_CHECK(model.IsMap(), "model: expected a mapping of model settings (d_model: ..., n_layer: ...)");
  MambaConfig cfg;
  for (const auto& kv : model) {
    const std::string key = kv.first.as<std::string>();
    auto it = std::find_if(fields().begin(), fields().end(), [&](const Field& f) { return f.key == key; });
    SERPENT_CHECK(it != fields().end(), "model.", key, ": unknown key (did you mean model.",
                  nearest_key(key, mamba_config_keys()), "?)");
    it->read(kv.second, cfg);
  }
  return cfg;
}

std::string mamba_config_yaml_text(const MambaConfig& cfg) {
  YAML::Node root;
  root["model"] = mamba_config_to_yaml(cfg);
  YAML::Emitter out;
  out << root;
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
  try {
    return mamba_config_from_yaml(root["model"]);
  } catch (const Error& e) {
    fail(source, ": ", e.what());
  }
}

}  // namespace serpent
