#include "io/hf.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "data/bpe.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "layers/mamba_config_yaml.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace serpent {

namespace {

constexpr const char* kEmbedding = "backbone.embeddings.weight";
constexpr const char* kReferenceEmbedding = "backbone.embedding.weight";  // the reference's own spelling
constexpr const char* kLmHead = "lm_head.weight";

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  SERPENT_CHECK(in.good(), "cannot open ", path);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    fail(path, " is not valid JSON: ", e.what());
  }
}

// Typed access to config.json fields, every error naming the file and the field.
class Fields {
 public:
  Fields(const json& j, std::string source) : j_(j), source_(std::move(source)) {}

  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
  const json& at(const char* key) const {
    SERPENT_CHECK(has(key), source_, ": required field '", key, "' is missing");
    return j_[key];
  }
  // Integers beyond 2^53 (or written as such floats) are refused before any conversion, so a
  // huge value can neither overflow nor wrap.
  int64_t integer(const char* key) const {
    const json& v = at(key);
    constexpr double kLimit = 9007199254740992.0;  // 2^53
    const bool integral =
        v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
    SERPENT_CHECK(integral, source_, ": field '", key, "' must be an integer, got ", v.dump());
    const double d = v.get<double>();
    SERPENT_CHECK(d >= -kLimit && d <= kLimit, source_, ": field '", key, "' = ", v.dump(), " is out of range");
    return v.is_number_integer() ? v.get<int64_t>() : int64_t(d);
  }
  // A model size: an integer within the range of its model key (layers/mamba_config.h).
  int64_t size(const char* key, const char* model_key) const {
    const int64_t v = integer(key);
    const std::string problem = keys::range_problem(v, model_key_spec(model_key));
    SERPENT_CHECK(problem.empty(), source_, ": field '", key, "' (", model_key, ") ", problem, ", got ", v);
    return v;
  }
  int64_t size(const char* key, const char* model_key, int64_t def) const {
    return has(key) ? size(key, model_key) : def;
  }
  int64_t integer(const char* key, int64_t def) const { return has(key) ? integer(key) : def; }
  double number(const char* key, double def) const {
    if (!has(key)) return def;
    SERPENT_CHECK(j_[key].is_number(), source_, ": field '", key, "' must be a number, got ", j_[key].dump());
    return j_[key].get<double>();
  }
  bool boolean(const char* key, bool def) const {
    if (!has(key)) return def;
    SERPENT_CHECK(j_[key].is_boolean(), source_, ": field '", key, "' must be true or false, got ", j_[key].dump());
    return j_[key].get<bool>();
  }
  std::string string(const char* key, const std::string& def) const {
    if (!has(key)) return def;
    SERPENT_CHECK(j_[key].is_string(), source_, ": field '", key, "' must be a string, got ", j_[key].dump());
    return j_[key].get<std::string>();
  }
  // An integer or "auto" (0).
  int64_t rank_or_auto(const char* key) const {
    if (has(key) && j_[key].is_string()) {
      SERPENT_CHECK(j_[key] == "auto", source_, ": field '", key, "' must be an integer or \"auto\", got ",
                    j_[key].dump());
      return 0;
    }
    return has(key) ? size(key, "model.dt_rank") : 0;
  }
  const std::string& source() const { return source_; }

 private:
  const json& j_;
  std::string source_;
};

[[noreturn]] void unsupported(const std::string& source, const std::string& field, const std::string& value,
                              const std::string& why) {
  fail(source, ": ", field, " = ", value, " is not supported: ", why);
}

MambaConfig from_transformers(const Fields& f, bool* untied) {
  const std::string& src = f.source();
  const std::string model_type = f.string("model_type", "mamba");
  if (model_type == "mamba2")
    unsupported(src, "model_type", "\"mamba2\"",
                "this is a Mamba-2 model; serpent implements Mamba-1 (model_type \"mamba\") only");
  if (model_type != "mamba") unsupported(src, "model_type", "\"" + model_type + "\"", "expected \"mamba\"");
  if (f.has("architectures"))
    for (const auto& a : f.at("architectures"))
      if (a.is_string() && a.get<std::string>().find("Mamba2") != std::string::npos)
        unsupported(src, "architectures", a.dump(), "Mamba-2 architectures are not implemented");
  MambaConfig c;
  c.d_model = f.size("hidden_size", "model.d_model");
  c.n_layer = f.size("num_hidden_layers", "model.n_layer");
  c.vocab_size = f.size("vocab_size", "model.vocab_size");
  // transformers' vocab_size is the embedding's row count, already padded.
  c.pad_vocab_size_multiple = c.vocab_size % 8 == 0 ? 8 : 1;
  c.d_state = f.size("state_size", "model.d_state", 16);
  c.d_conv = f.size("conv_kernel", "model.d_conv", 4);
  c.expand = f.size("expand", "model.expand", 2);
  c.dt_rank = f.rank_or_auto("time_step_rank");
  c.norm_epsilon = f.number("layer_norm_epsilon", 1e-5);
  c.dt_min = f.number("time_step_min", c.dt_min);
  c.dt_max = f.number("time_step_max", c.dt_max);
  c.dt_init_floor = f.number("time_step_floor", c.dt_init_floor);
  c.conv_bias = f.boolean("use_conv_bias", true);
  c.residual_in_fp32 = f.boolean("residual_in_fp32", true);
  // transformers' default for use_bias changed between releases; when the field is absent, the
  // tensors decide (an in_proj.bias is then reported as unexpected).
  if (f.boolean("use_bias", false))
    unsupported(src, "use_bias", "true", "linear layers with bias are not implemented (the Mamba models have none)");
  if (!f.boolean("rms_norm", true))
    unsupported(src, "rms_norm", "false", "only RMSNorm is implemented (LayerNorm is not)");
  const std::string act = f.string("hidden_act", "silu");
  if (act != "silu" && act != "swish") unsupported(src, "hidden_act", "\"" + act + "\"", "Mamba uses silu");
  if (f.has("intermediate_size") && f.integer("intermediate_size") != c.d_inner())
    fail(src, ": intermediate_size = ", f.integer("intermediate_size"), " but expand * hidden_size = ", c.expand, " * ",
         c.d_model, " = ", c.d_inner(), "; they must agree");
  if (untied) *untied = !f.boolean("tie_word_embeddings", true);
  return c;
}

MambaConfig from_reference(const Fields& f, bool* untied) {
  const std::string& src = f.source();
  MambaConfig c;
  c.d_model = f.size("d_model", "model.d_model");
  c.n_layer = f.size("n_layer", "model.n_layer");
  c.vocab_size = f.size("vocab_size", "model.vocab_size");
  c.pad_vocab_size_multiple = f.size("pad_vocab_size_multiple", "model.pad_vocab_size_multiple", 8);
  if (!f.boolean("rms_norm", true))
    unsupported(src, "rms_norm", "false", "only RMSNorm is implemented (LayerNorm is not)");
  c.residual_in_fp32 = f.boolean("residual_in_fp32", true);
  if (f.integer("d_intermediate", 0) != 0)
    unsupported(src, "d_intermediate", std::to_string(f.integer("d_intermediate")),
                "blocks with an MLP are not implemented");
  if (f.has("attn_layer_idx") && !f.at("attn_layer_idx").empty())
    unsupported(src, "attn_layer_idx", f.at("attn_layer_idx").dump(), "attention layers are not implemented");
  if (untied) *untied = !f.boolean("tie_embeddings", true);
  if (f.has("ssm_cfg")) {
    SERPENT_CHECK(f.at("ssm_cfg").is_object(), src, ": field 'ssm_cfg' must be an object");
    const Fields s(f.at("ssm_cfg"), src + " (ssm_cfg)");
    const std::string layer = s.string("layer", "Mamba1");
    if (layer != "Mamba1") unsupported(s.source(), "layer", "\"" + layer + "\"", "serpent implements Mamba-1 only");
    c.d_state = s.size("d_state", "model.d_state", c.d_state);
    c.d_conv = s.size("d_conv", "model.d_conv", c.d_conv);
    c.expand = s.size("expand", "model.expand", c.expand);
    c.dt_rank = s.rank_or_auto("dt_rank");
    c.dt_min = s.number("dt_min", c.dt_min);
    c.dt_max = s.number("dt_max", c.dt_max);
    c.dt_init_floor = s.number("dt_init_floor", c.dt_init_floor);
    c.conv_bias = s.boolean("conv_bias", true);
    if (s.boolean("bias", false))
      unsupported(s.source(), "bias", "true",
                  "linear layers with bias are not implemented (the Mamba models have none)");
  }
  return c;
}

// Imported weights are trained as they are: a NaN or infinity would poison the first step.
void check_finite(const Tensor& t, const std::string& name, const std::string& file) {
  const float* p = t.data<float>();
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(p[i])) first = first < 0 ? i : first, ++bad;
  SERPENT_CHECK(bad == 0, file, ": tensor '", name, "' holds ", bad, " values that are NaN or infinite (the first at ",
                "element ", first, " of ", t.numel(), "); serpent imports finite weights only");
}

// Why a tensor we do not expect might be there, to make the error useful.
std::string unexpected_hint(const std::string& name) {
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  if (has("in_proj.bias") || has("out_proj.bias") || has("x_proj.bias"))
    return "linear biases (use_bias true) are not supported";
  if (has("mixer.norm") || has("dt_bias")) return "it belongs to a Mamba-2 layer, which serpent does not implement";
  if (has("norm.bias") || has("norm_f.bias"))
    return "a norm with a bias is LayerNorm, which serpent does not implement (RMSNorm only)";
  if (has("conv1d.bias")) return "config.json says use_conv_bias false";
  return "it is not a parameter of a Mamba-1 MambaForCausalLM with this config";
}

// Where each tensor of an HF folder lives: the index's weight_map, or the single file.
struct TensorFiles {
  std::map<std::string, std::unique_ptr<SafetensorsReader>> readers;                // by file name
  std::map<std::string, std::pair<const SafetensorsReader*, std::string>> by_name;  // our name -> (file, its name)
  std::string listing;  // "model.safetensors" or "model.safetensors.index.json", for messages
};

TensorFiles open_tensor_files(const std::string& dir) {
  TensorFiles tf;
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single = fs::path(dir) / "model.safetensors";
  std::vector<std::pair<std::string, std::string>> names;  // (tensor, file)
  if (fs::exists(index)) {
    tf.listing = "model.safetensors.index.json";
    const json j = read_json_file(index.string());
    SERPENT_CHECK(j.contains("weight_map") && j["weight_map"].is_object(), index.string(),
                  ": no weight_map object (expected {\"weight_map\": {\"<tensor>\": \"<file>\"}})");
    for (const auto& [tensor, file] : j["weight_map"].items()) {
      SERPENT_CHECK(file.is_string(), index.string(), ": weight_map entry '", tensor, "' is not a file name");
      const std::string f = file.get<std::string>();
      SERPENT_CHECK(fs::path(f).filename().string() == f, index.string(), ": weight_map entry '", tensor, "' names '",
                    f, "', which is not a plain file name in ", dir);
      SERPENT_CHECK(fs::exists(fs::path(dir) / f), index.string(), ": shard '", f, "' (holding '", tensor,
                    "') does not exist in ", dir);
      names.emplace_back(tensor, f);
    }
  } else {
    SERPENT_CHECK(fs::exists(single), dir,
                  " has neither model.safetensors nor model.safetensors.index.json (serpent reads safetensors "
                  "only; convert pytorch_model.bin files with the safetensors library first)");
    tf.listing = "model.safetensors";
    tf.readers["model.safetensors"] = std::make_unique<SafetensorsReader>(single.string());
    for (const auto& e : tf.readers["model.safetensors"]->entries()) names.emplace_back(e.name, "model.safetensors");
  }
  for (const auto& [tensor, file] : names) {
    auto& reader = tf.readers[file];
    if (!reader) reader = std::make_unique<SafetensorsReader>((fs::path(dir) / file).string());
    SERPENT_CHECK(reader->find(tensor), tf.listing, " in ", dir, " places tensor '", tensor, "' in ", file,
                  ", which does not contain it");
    const std::string ours = tensor == kReferenceEmbedding ? kEmbedding : tensor;
    SERPENT_CHECK(!tf.by_name.count(ours), dir, ": the embedding is present under both spellings, '", kEmbedding,
                  "' and '", kReferenceEmbedding, "'; expected one");
    tf.by_name[ours] = {reader.get(), tensor};
  }
  return tf;
}

std::string tokenizer_from_config(const std::string& config_text) {
  try {
    const YAML::Node root = YAML::Load(config_text);
    if (root.IsMap() && root["data"] && root["data"].IsMap() && root["data"]["tokenizer"] &&
        root["data"]["tokenizer"].IsScalar())
      return root["data"]["tokenizer"].Scalar();
  } catch (const YAML::Exception&) {
  }
  return "";
}

// The id of <|endoftext|> in a tokenizer.json, or 0 (the GPT-NeoX id) when it has none.
int64_t end_of_text_id(const std::string& tokenizer_path) {
  const json j = read_json_file(tokenizer_path);
  if (j.contains("added_tokens") && j["added_tokens"].is_array())
    for (const auto& t : j["added_tokens"])
      if (t.is_object() && t.value("content", "") == "<|endoftext|>" && t.contains("id") && t["id"].is_number_integer())
        return t["id"].get<int64_t>();
  return 0;
}

}  // namespace

std::vector<std::pair<std::string, Shape>> mamba_parameter_shapes(const MambaConfig& cfg) {
  const int64_t D = cfg.d_model, E = cfg.d_inner(), N = cfg.d_state, R = cfg.resolved_dt_rank(), W = cfg.d_conv;
  std::vector<std::pair<std::string, Shape>> out = {{kEmbedding, {cfg.padded_vocab(), D}}};
  for (int64_t i = 0; i < cfg.n_layer; ++i) {
    const std::string p = "backbone.layers." + std::to_string(i) + ".";
    out.push_back({p + "norm.weight", {D}});
    out.push_back({p + "mixer.A_log", {E, N}});
    out.push_back({p + "mixer.D", {E}});
    out.push_back({p + "mixer.in_proj.weight", {2 * E, D}});
    out.push_back({p + "mixer.conv1d.weight", {E, 1, W}});
    if (cfg.conv_bias) out.push_back({p + "mixer.conv1d.bias", {E}});
    out.push_back({p + "mixer.x_proj.weight", {R + 2 * N, E}});
    out.push_back({p + "mixer.dt_proj.weight", {E, R}});
    out.push_back({p + "mixer.dt_proj.bias", {E}});
    out.push_back({p + "mixer.out_proj.weight", {D, E}});
  }
  out.push_back({"backbone.norm_f.weight", {D}});
  return out;
}

nlohmann::ordered_json hf_config_json(const MambaConfig& cfg, int64_t eos_token_id) {
  nlohmann::ordered_json j;
  j["architectures"] = {"MambaForCausalLM"};
  j["model_type"] = "mamba";
  j["hidden_size"] = cfg.d_model;
  j["intermediate_size"] = cfg.d_inner();
  j["num_hidden_layers"] = cfg.n_layer;
  j["state_size"] = cfg.d_state;
  j["conv_kernel"] = cfg.d_conv;
  j["expand"] = cfg.expand;
  j["time_step_rank"] = cfg.resolved_dt_rank();
  j["vocab_size"] = cfg.padded_vocab();
  j["layer_norm_epsilon"] = cfg.norm_epsilon;
  j["use_bias"] = cfg.bias;
  j["use_conv_bias"] = cfg.conv_bias;
  j["hidden_act"] = "silu";
  j["residual_in_fp32"] = cfg.residual_in_fp32;
  j["tie_word_embeddings"] = cfg.tie_embeddings;
  j["bos_token_id"] = eos_token_id;
  j["eos_token_id"] = eos_token_id;
  j["pad_token_id"] = eos_token_id;
  j["time_step_min"] = cfg.dt_min;
  j["time_step_max"] = cfg.dt_max;
  j["time_step_floor"] = cfg.dt_init_floor;
  j["time_step_scale"] = 1.0;
  j["time_step_init_scheme"] = "random";
  j["initializer_range"] = 0.1;
  j["rescale_prenorm_residual"] = false;
  j["use_cache"] = true;
  j["dtype"] = "float32";
  return j;
}

MambaConfig mamba_config_from_hf(const json& j, const std::string& source, bool* untied) {
  SERPENT_CHECK(j.is_object(), source, ": expected a JSON object");
  const Fields f(j, source);
  if (f.has("model_type") || f.has("hidden_size")) return from_transformers(f, untied);
  if (f.has("d_model")) return from_reference(f, untied);
  fail(source, ": not a Mamba config (neither transformers' hidden_size/model_type nor the reference's d_model)");
}

HfModel read_hf_dir(const std::string& dir) {
  SERPENT_CHECK(fs::is_directory(dir), dir, " is not a folder (expected a Hugging Face model folder with config.json)");
  const std::string config_path = (fs::path(dir) / "config.json").string();
  SERPENT_CHECK(fs::exists(config_path), dir, " has no config.json");
  bool untied = false;
  HfModel m;
  m.config = mamba_config_from_hf(read_json_file(config_path), config_path, &untied);
  try {
    MambaConfig check = m.config;
    check.tie_embeddings = true;  // untied files are judged by their lm_head below
    check.validate();
  } catch (const Error& e) {
    fail(config_path, ": ", e.what());
  }

  TensorFiles files = open_tensor_files(dir);
  std::set<std::string> used;
  for (const auto& [name, shape] : mamba_parameter_shapes(m.config)) {
    auto it = files.by_name.find(name);
    SERPENT_CHECK(it != files.by_name.end(), dir, ": tensor '", name, "' (shape ", shape_str(shape),
                  ") is missing from ", files.listing,
                  name == kEmbedding ? str_cat(" (also looked for '", kReferenceEmbedding, "')") : "");
    const auto& [reader, file_name] = it->second;
    const SafetensorsEntry* e = reader->find(file_name);
    SERPENT_CHECK(e->shape == shape, reader->path(), ": tensor '", file_name, "' has shape ", shape_str(e->shape),
                  ", expected ", shape_str(shape), " from ", config_path);
    m.tensors.emplace_back(name, reader->read_f32(file_name));
    check_finite(m.tensors.back().second, file_name, reader->path());
    used.insert(name);
  }
  if (auto it = files.by_name.find(kLmHead); it != files.by_name.end()) {
    const auto& [reader, file_name] = it->second;
    const Shape want = {m.config.padded_vocab(), m.config.d_model};
    SERPENT_CHECK(reader->find(file_name)->shape == want, reader->path(), ": tensor '", kLmHead, "' has shape ",
                  shape_str(reader->find(file_name)->shape), ", expected ", shape_str(want));
    const Tensor head = reader->read_f32(file_name);
    const Tensor& emb = m.tensors.front().second;
    const bool equal = std::memcmp(head.data_ptr(), emb.data_ptr(), emb.nbytes()) == 0;
    if (untied)
      SERPENT_CHECK(equal, reader->path(), ": '", kLmHead,
                    "' differs from the embedding and config.json unties them "
                    "(tie_word_embeddings false); serpent supports tied embeddings only");
    else if (!equal)
      std::fprintf(stderr,
                   "serpent: warning: %s: '%s' differs from the embedding; the config ties them, so it is "
                   "ignored, as transformers does\n",
                   reader->path().c_str(), kLmHead);
    used.insert(kLmHead);
  } else {
    SERPENT_CHECK(!untied, config_path, ": tie_word_embeddings = false but there is no '", kLmHead,
                  "'; untied embeddings are not supported");
  }
  for (const auto& [name, where] : files.by_name)
    SERPENT_CHECK(used.count(name), where.first->path(), ": unexpected tensor '", where.second,
                  "': ", unexpected_hint(name));
  m.config.tie_embeddings = true;
  return m;
}

void write_hf_dir(const std::string& dir, const MambaConfig& cfg, const NamedTensors& model, const std::string& source,
                  int64_t eos_token_id) {
  std::map<std::string, Tensor> by_name;
  for (const auto& [name, t] : model) by_name[name] = t;
  NamedTensors ordered;
  for (const auto& [name, shape] : mamba_parameter_shapes(cfg)) {
    auto it = by_name.find(name);
    SERPENT_CHECK(it != by_name.end(), source, ": parameter '", name, "' (shape ", shape_str(shape), ") is missing");
    SERPENT_CHECK(it->second.shape() == shape, source, ": parameter '", name, "' has shape ",
                  shape_str(it->second.shape()), ", expected ", shape_str(shape), " from its config");
    ordered.emplace_back(name, it->second.to(DType::f32));
    by_name.erase(it);
  }
  SERPENT_CHECK(by_name.empty(), source, ": unexpected parameter '", by_name.empty() ? "" : by_name.begin()->first,
                "' for config ", cfg.summary());
  std::error_code ec;
  fs::create_directories(dir, ec);
  SERPENT_CHECK(!ec && fs::is_directory(dir), "cannot create folder ", dir, ": ", ec.message());
  {
    const std::string path = (fs::path(dir) / "config.json").string();
    std::ofstream out(path);
    out << hf_config_json(cfg, eos_token_id).dump(2) << "\n";
    SERPENT_CHECK(out.good(), "cannot write ", path);
  }
  write_safetensors((fs::path(dir) / "model.safetensors").string(), ordered, {{"format", "pt"}});
}

std::vector<std::string> export_hf(const std::string& checkpoint, const std::string& out_dir,
                                   const std::string& tokenizer) {
  Checkpoint c = load_checkpoint(checkpoint, CheckpointParts::model_only);
  const std::string source = "checkpoint " + checkpoint;
  MambaConfig cfg = mamba_config_from_config_text(c.config_yaml, source);
  try {
    cfg.validate();
  } catch (const Error& e) {
    fail(source, ": ", e.what());
  }

  std::vector<std::string> notes;
  std::string tok = tokenizer;
  const bool from_config = tok.empty();
  if (from_config) tok = tokenizer_from_config(c.config_yaml);
  std::string tokenizer_file;
  bool byte_tokenizer = false;
  int64_t eos = 0;
  if (tok.empty()) {
    notes.push_back(
        "the checkpoint's config names no data.tokenizer, so no tokenizer.json was written (pass "
        "--tokenizer PATH to add one)");
  } else if (tok == "none") {
    notes.push_back("no tokenizer.json written (--tokenizer none)");
  } else if (tok == "byte") {
    // The byte tokenizer's end-of-text is id 256 (docs/DATA.md), when the vocabulary reaches it.
    eos = cfg.vocab_size > 256 ? 256 : 0;
    if (cfg.vocab_size > 256) {
      byte_tokenizer = true;
    } else {
      notes.push_back(str_cat("the model uses serpent's byte tokenizer but its vocabulary (", cfg.vocab_size,
                              ") does not hold the 257 byte tokenizer ids, so no tokenizer.json was written"));
    }
  } else {
    SERPENT_CHECK(fs::is_regular_file(tok), "tokenizer ", tok,
                  from_config ? " (data.tokenizer in the checkpoint's config)" : "",
                  " does not exist; pass --tokenizer PATH, or --tokenizer none to export without one");
    tokenizer_file = tok;
    eos = end_of_text_id(tok);
  }

  write_hf_dir(out_dir, cfg, c.model, source, eos);
  if (!tokenizer_file.empty()) {
    std::error_code ec;
    const fs::path dst = fs::path(out_dir) / "tokenizer.json";
    fs::copy_file(tokenizer_file, dst, fs::copy_options::overwrite_existing, ec);
    SERPENT_CHECK(!ec, "cannot copy tokenizer ", tokenizer_file, " to ", dst.string(), ": ", ec.message());
    notes.push_back(str_cat("copied ", tokenizer_file, " as tokenizer.json (end-of-text id ", eos, ")"));
  }
  if (byte_tokenizer) {
    const fs::path dst = fs::path(out_dir) / "tokenizer.json";
    std::ofstream f(dst, std::ios::binary);
    f << byte_tokenizer_json();
    SERPENT_CHECK(f.good(), "cannot write ", dst.string());
    notes.push_back(
        "wrote tokenizer.json for serpent's byte tokenizer (byte-level BPE, ids 0-255 the bytes, no merges, "
        "<|endoftext|> = 256)");
  }
  return notes;
}

void import_hf(const std::string& in_dir, const std::string& out_checkpoint) {
  HfModel m = read_hf_dir(in_dir);
  Checkpoint c;
  c.config_yaml = str_cat("# imported by serpent import-hf from ", fs::absolute(in_dir).string(), "\n",
                          mamba_config_yaml_text(m.config));
  // The folder's tokenizer becomes data.tokenizer, so eval, generate and export-hf find it.
  const fs::path tokenizer = fs::absolute(fs::path(in_dir) / "tokenizer.json");
  if (fs::is_regular_file(tokenizer)) {
    YAML::Emitter data;
    data << YAML::BeginMap << YAML::Key << "data" << YAML::Value << YAML::BeginMap << YAML::Key << "tokenizer"
         << YAML::Value << tokenizer.lexically_normal().string() << YAML::EndMap << YAML::EndMap;
    c.config_yaml += str_cat(data.c_str(), "\n");
  }
  c.model = std::move(m.tensors);
  save_checkpoint(out_checkpoint, c);
}

}  // namespace serpent
