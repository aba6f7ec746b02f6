// Hugging Face interop without Python (io/hf.h): config.json and the parameter shapes, export
// and import through folders built here (single file, shards with an index, the reference's
// spelling and config, bf16 and fp16 files), and every error case. The commands are in
// cli/test_cmd_hf.cpp, the model section of the YAML config in layers/test_mamba_config.cpp.
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/bpe.h"
#include "data/tokenizer.h"
#include "io/checkpoint.h"
#include "io/hf.h"
#include "io/safetensors.h"
#include "tests/helpers.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace serpent;
using namespace serpent::testing;

namespace {

// ---- config.json and parameter shapes ----

TEST(HfConfig, ExportedFieldsAreTransformers) {
  MambaConfig c;
  c.d_model = 24;
  c.n_layer = 3;
  c.vocab_size = 50277;
  const json j = transformers_config(c);
  EXPECT_EQ(j["architectures"], json::array({"MambaForCausalLM"}));
  EXPECT_EQ(j["model_type"], "mamba");
  EXPECT_EQ(j["hidden_size"], 24);
  EXPECT_EQ(j["intermediate_size"], 48);
  EXPECT_EQ(j["num_hidden_layers"], 3);
  EXPECT_EQ(j["state_size"], 16);
  EXPECT_EQ(j["conv_kernel"], 4);
  EXPECT_EQ(j["expand"], 2);
  EXPECT_EQ(j["time_step_rank"], 2);  // ceil(24 / 16)
  EXPECT_EQ(j["vocab_size"], 50280);
  EXPECT_EQ(j["layer_norm_epsilon"], 1e-5);
  EXPECT_EQ(j["use_bias"], false);
  EXPECT_EQ(j["use_conv_bias"], true);
  EXPECT_EQ(j["hidden_act"], "silu");
  EXPECT_EQ(j["residual_in_fp32"], true);
  EXPECT_EQ(j["tie_word_embeddings"], true);
  EXPECT_EQ(j["bos_token_id"], 0);
  EXPECT_EQ(j["eos_token_id"], 0);
  EXPECT_EQ(j["pad_token_id"], 0);
  const MambaConfig back = mamba_config_from_hf(j, "config.json");
  EXPECT_EQ(back.d_model, 24);
  EXPECT_EQ(back.n_layer, 3);
  EXPECT_EQ(back.padded_vocab(), 50280);
  EXPECT_EQ(back.resolved_dt_rank(), 2);
  EXPECT_EQ(back.norm_epsilon, 1e-5);
}

TEST(HfConfig, ParameterShapesAreTheModels) {
  for (bool conv_bias : {true, false}) {
    MambaConfig c = hf_small_config();
    c.conv_bias = conv_bias;
    Generator gen(1);
    MambaLM model(c, gen);
    std::vector<std::pair<std::string, Shape>> actual;
    for (const auto& [name, t] : model.named_parameters()) actual.emplace_back(name, t.shape());
    EXPECT_EQ(mamba_parameter_shapes(c), actual) << "conv_bias " << conv_bias;
  }
}

// ---- export and import ----

TEST(HfInterop, ExportThenImportIsExact) {
  TempDir dir;
  Generator gen(3);
  MambaLM model(hf_small_config(), gen);
  const std::string tokenizer = dir / "tok.json";
  std::ofstream(tokenizer) << R"({"added_tokens": [{"id": 50256, "content": "<|endoftext|>"}], "model": {}})";
  Checkpoint c;
  c.config_yaml = mamba_config_yaml_text(model.config()) + "data:\n  tokenizer: " + tokenizer + "\n";
  c.model = model.named_parameters();
  save_checkpoint(dir / "a.h5", c);

  const std::string out = dir / "hf";
  const auto notes = export_hf(dir / "a.h5", out);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("tokenizer.json"), std::string::npos);
  EXPECT_EQ(read_text_file(out + "/tokenizer.json"), read_text_file(tokenizer));
  const json cfg = json::parse(read_text_file(out + "/config.json"));
  EXPECT_EQ(cfg["eos_token_id"], 50256);
  EXPECT_EQ(cfg["vocab_size"], 16);
  SafetensorsReader st(out + "/model.safetensors");
  EXPECT_EQ(st.entries().size(), c.model.size());
  EXPECT_EQ(st.find("lm_head.weight"), nullptr);
  for (const auto& [name, t] : c.model) {
    ASSERT_NE(st.find(name), nullptr) << name;
    EXPECT_EQ(st.find(name)->dtype, "F32");
    EXPECT_EQ(st.read(name).to_vector<float>(), t.to_vector<float>()) << name;
  }

  import_hf(out, dir / "b.h5");
  const Checkpoint back = load_checkpoint(dir / "b.h5");
  expect_same_tensors(back.model, c.model);
  EXPECT_FALSE(back.has_optim());
  const MambaConfig bc = mamba_config_from_config_text(back.config_yaml, "b.h5");
  EXPECT_EQ(bc.padded_vocab(), 16);
  EXPECT_EQ(bc.d_model, 16);
  EXPECT_EQ(bc.n_layer, 2);
  EXPECT_NE(back.config_yaml.find("# imported by serpent import-hf from"), std::string::npos);
  EXPECT_EQ(YAML::Load(back.config_yaml)["data"]["tokenizer"].as<std::string>(),
            fs::absolute(out + "/tokenizer.json").lexically_normal().string());

  // Exporting the import again gives the same files, byte for byte (tokenizer aside).
  const std::string again = dir / "hf2";
  export_hf(dir / "b.h5", again, "none");
  EXPECT_EQ(read_text_file(again + "/model.safetensors"), read_text_file(out + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(again + "/tokenizer.json"));
}

TEST(HfInterop, ByteTokenizerAndMissingTokenizer) {
  TempDir dir;
  Checkpoint c;
  c.model = random_tensors(hf_small_config(), 1);
  c.config_yaml = mamba_config_yaml_text(hf_small_config()) + "data:\n  tokenizer: byte\n";
  save_checkpoint(dir / "byte.h5", c);
  auto notes = export_hf(dir / "byte.h5", dir / "out1");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("byte tokenizer"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "out1/tokenizer.json"));
  EXPECT_EQ(json::parse(read_text_file(dir / "out1/config.json"))["eos_token_id"], 0);  // vocab 11: no id 256
  MambaConfig with_eot = hf_small_config();
  with_eot.vocab_size = 257;  // bytes and end-of-text, padded to 264
  Checkpoint e;
  e.model = random_tensors(with_eot, 1);
  e.config_yaml = mamba_config_yaml_text(with_eot) + "data:\n  tokenizer: byte\n";
  save_checkpoint(dir / "eot.h5", e);
  notes = export_hf(dir / "eot.h5", dir / "out3");
  const json eot = json::parse(read_text_file(dir / "out3/config.json"));
  EXPECT_EQ(eot["eos_token_id"], 256);
  EXPECT_EQ(eot["vocab_size"], 264);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("wrote tokenizer.json"), std::string::npos);
  // The written tokenizer.json, read by the byte-level BPE that matches Hugging Face's ids on the
  // tokenizer test set, encodes and decodes as the byte tokenizer.
  const BpeTokenizer exported(dir / "out3/tokenizer.json");
  const ByteTokenizer bytes;
  EXPECT_EQ(exported.vocab_size(), 257);
  EXPECT_EQ(exported.eot_id(), 256);
  std::string every_ascii;
  for (int b = 0; b < 128; ++b) every_ascii.push_back(char(b));
  for (const std::string& text : {std::string("Hello, world!"), every_ascii,
                                  std::string("na\xc3\xafve caf\xc3\xa9 \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac "
                                              "\xf0\x9f\x90\x8d"),
                                  std::string("\t\n   tabs,\r\n runs  of   spaces 12345 don't"),
                                  std::string("one<|endoftext|>two <|endoftext|><|endoftext|>"),
                                  read_text_file(data_path("pride_and_prejudice_ch1.txt"))}) {
    const std::vector<int32_t> ids = bytes.encode(text);
    EXPECT_EQ(exported.encode(text), ids) << text.substr(0, 40);
    EXPECT_EQ(exported.decode_bytes(ids), text);
  }

  c.config_yaml = mamba_config_yaml_text(hf_small_config()) + "data:\n  tokenizer: " + dir / "gone.json" + "\n";
  save_checkpoint(dir / "gone.h5", c);
  expect_error([&] { export_hf(dir / "gone.h5", dir / "out2"); },
               {"tokenizer", "gone.json", "does not exist", "--tokenizer"});
  EXPECT_FALSE(fs::exists(dir / "out2/config.json"));  // nothing written before the check
}

TEST(HfInterop, ImportsShardsReferenceSpellingAndBf16) {
  TempDir dir;
  const MambaConfig cfg = hf_small_config();
  const NamedTensors model = random_tensors(cfg, 7);
  const std::string hf = dir.sub("sharded");
  write_config(hf, transformers_config(cfg));
  // Two shards in bf16, the embedding under the reference's name, plus a tied lm_head.
  NamedTensors first, second;
  json weight_map;
  for (size_t i = 0; i < model.size(); ++i) {
    std::string name = model[i].first == "backbone.embeddings.weight" ? "backbone.embedding.weight" : model[i].first;
    (i % 2 ? second : first).emplace_back(name, model[i].second.to(DType::bf16));
    weight_map[name] = i % 2 ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
  }
  second.emplace_back("lm_head.weight", model[0].second.to(DType::bf16));
  weight_map["lm_head.weight"] = "model-00002-of-00002.safetensors";
  write_safetensors(hf + "/model-00001-of-00002.safetensors", first);
  write_safetensors(hf + "/model-00002-of-00002.safetensors", second);
  std::ofstream(hf + "/model.safetensors.index.json")
      << json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump();

  const HfModel m = read_hf_dir(hf);
  ASSERT_EQ(m.tensors.size(), model.size());
  for (size_t i = 0; i < model.size(); ++i) {
    EXPECT_EQ(m.tensors[i].first, model[i].first);
    // bf16 keeps the top 16 bits of each float: the imported values are the originals rounded so.
    EXPECT_EQ(m.tensors[i].second.to_vector<float>(), model[i].second.to(DType::bf16).to_vector<float>());
    EXPECT_LE(relative_error(m.tensors[i].second, model[i].second), 4e-3) << model[i].first;
  }
}

// fp16 bits of k/64 for |k| <= 64 (exactly representable), written out for the test.
uint16_t half_of_k64(int k) {
  if (k == 0) return 0;
  const uint16_t sign = k < 0 ? 0x8000 : 0;
  int m = std::abs(k), e = -6;  // value = m * 2^-6
  while (m >= 2048) m >>= 1, ++e;
  while (m < 1024) m <<= 1, --e;  // now value = (m / 1024) * 2^(e + 10 - 10) with 1024 <= m < 2048
  return uint16_t(sign | uint16_t((e + 10 + 15) << 10) | uint16_t(m - 1024));
}

TEST(HfInterop, ImportsFp16AndTheReferenceConfig) {
  TempDir dir;
  const std::string hf = dir.sub("ref");
  // The reference implementation's config.json: unpadded vocab, padding multiple, ssm_cfg.
  write_config(hf, json::parse(R"({"d_model": 16, "n_layer": 2, "vocab_size": 11, "ssm_cfg": {"d_state": 4},
                                   "rms_norm": true, "residual_in_fp32": true, "fused_add_norm": true,
                                   "pad_vocab_size_multiple": 8})"));
  MambaConfig cfg = hf_small_config();
  cfg.d_state = 4;
  json header = json::object();
  std::string data;
  std::vector<std::pair<std::string, std::vector<float>>> expected;
  int counter = 0;
  for (const auto& [name, shape] : mamba_parameter_shapes(cfg)) {
    const std::string file_name = name == "backbone.embeddings.weight" ? "backbone.embedding.weight" : name;
    std::vector<uint16_t> bits;
    std::vector<float> values;
    for (int64_t i = 0; i < shape_numel(shape); ++i, ++counter) {
      const int k = counter * 37 % 129 - 64;
      bits.push_back(half_of_k64(k));
      values.push_back(float(k) / 64.0f);
    }
    header[file_name] = {
        {"dtype", "F16"}, {"shape", shape}, {"data_offsets", {data.size(), data.size() + bits.size() * 2}}};
    data += raw_bytes(bits);
    expected.emplace_back(name, values);
  }
  write_file(hf + "/model.safetensors", handmade_safetensors(header.dump(), data));
  import_hf(hf, dir / "ref.h5");
  const Checkpoint c = load_checkpoint(dir / "ref.h5");
  const MambaConfig back = mamba_config_from_config_text(c.config_yaml, "ref.h5");
  EXPECT_EQ(back.d_state, 4);
  EXPECT_EQ(back.vocab_size, 11);
  EXPECT_EQ(back.padded_vocab(), 16);
  ASSERT_EQ(c.model.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(c.model[i].first, expected[i].first);
    EXPECT_EQ(c.model[i].second.to_vector<float>(), expected[i].second) << expected[i].first;
  }
}

TEST(HfInterop, UnsupportedConfigsNameTheField) {
  TempDir tmp;
  auto expect_import_error = [&](const std::string& name, auto edit, const std::vector<std::string>& parts) {
    SCOPED_TRACE(name);
    Folder f(tmp, name);
    edit(f.config);
    const std::string dir = f.write();
    expect_error([&] { read_hf_dir(dir); }, parts);
  };
  expect_import_error("mamba2", [](json& j) { j["model_type"] = "mamba2"; },
                      {"config.json", "model_type", "mamba2", "Mamba-2"});
  expect_import_error("arch2", [](json& j) { j["architectures"] = {"Mamba2ForCausalLM"}; },
                      {"architectures", "Mamba2"});
  expect_import_error("bias", [](json& j) { j["use_bias"] = true; }, {"config.json", "use_bias", "bias"});
  expect_import_error("act", [](json& j) { j["hidden_act"] = "gelu"; }, {"hidden_act", "gelu"});
  expect_import_error("inter", [](json& j) { j["intermediate_size"] = 40; }, {"intermediate_size", "40", "32"});
  expect_import_error("size", [](json& j) { j.erase("hidden_size"); }, {"hidden_size", "missing"});
  expect_import_error("float", [](json& j) { j["num_hidden_layers"] = "two"; }, {"num_hidden_layers", "integer"});
  // Sizes are checked against their model key's range before anything is derived or allocated.
  expect_import_error("layers", [](json& j) { j["num_hidden_layers"] = 1000000000; },
                      {"config.json", "num_hidden_layers", "model.n_layer", "[1, 1024]", "1000000000"});
  expect_import_error("huge", [](json& j) { j["hidden_size"] = 1.2e29; }, {"hidden_size", "out of range"});
  expect_import_error("uhuge", [](json& j) { j["vocab_size"] = uint64_t(1) << 63; }, {"vocab_size", "out of range"});
  expect_import_error("negative", [](json& j) { j["state_size"] = -4; }, {"state_size", "model.d_state", "-4"});
  expect_import_error("reference_huge",
                      [](json& j) {
                        j = {{"d_model", 16}, {"n_layer", 2}, {"vocab_size", 16}, {"pad_vocab_size_multiple", 1e12}};
                      },
                      {"pad_vocab_size_multiple", "[1, 65536]"});
  expect_import_error("reference_layernorm",
                      [](json& j) {
                        j = {{"d_model", 16}, {"n_layer", 2}, {"vocab_size", 16}, {"rms_norm", false}};
                      },
                      {"rms_norm", "LayerNorm"});
  expect_import_error("reference_mamba2",
                      [](json& j) {
                        j = {{"d_model", 16}, {"n_layer", 2}, {"vocab_size", 16}, {"ssm_cfg", {{"layer", "Mamba2"}}}};
                      },
                      {"ssm_cfg", "layer", "Mamba2"});
  expect_import_error("reference_mlp",
                      [](json& j) {
                        j = {{"d_model", 16}, {"n_layer", 2}, {"vocab_size", 16}, {"d_intermediate", 64}};
                      },
                      {"d_intermediate", "MLP"});
}

TEST(HfInterop, TensorProblemsNameTheTensor) {
  TempDir tmp;
  {
    Folder f(tmp, "missing");
    f.drop("backbone.layers.1.mixer.dt_proj.bias");
    expect_error([&] { read_hf_dir(f.write()); }, {"backbone.layers.1.mixer.dt_proj.bias", "missing", "[32]"});
  }
  {
    Folder f(tmp, "shape");
    f.replace("backbone.layers.0.mixer.x_proj.weight", zeros({34, 32}));
    expect_error([&] { read_hf_dir(f.write()); },
                 {"model.safetensors", "backbone.layers.0.mixer.x_proj.weight", "[34, 32]", "expected [33, 32]"});
  }
  {
    Folder f(tmp, "extra");
    f.tensors.emplace_back("backbone.layers.0.mixer.in_proj.bias", zeros({64}));
    expect_error([&] { read_hf_dir(f.write()); }, {"unexpected tensor", "in_proj.bias", "use_bias"});
  }
  {
    Folder f(tmp, "layernorm");
    f.tensors.emplace_back("backbone.norm_f.bias", zeros({16}));
    expect_error([&] { read_hf_dir(f.write()); }, {"unexpected tensor", "backbone.norm_f.bias", "LayerNorm"});
  }
  {
    Folder f(tmp, "conv");
    f.config["use_conv_bias"] = false;
    expect_error([&] { read_hf_dir(f.write()); }, {"unexpected tensor", "conv1d.bias", "use_conv_bias false"});
  }
  {
    Folder f(tmp, "both_spellings");
    f.tensors.emplace_back("backbone.embedding.weight", zeros({16, 16}));
    expect_error([&] { read_hf_dir(f.write()); }, {"both spellings"});
  }
  {
    Folder f(tmp, "untied");
    f.config["tie_word_embeddings"] = false;
    f.tensors.emplace_back("lm_head.weight", zeros({16, 16}));
    expect_error([&] { read_hf_dir(f.write()); }, {"lm_head.weight", "tie_word_embeddings false"});
  }
  {
    Folder f(tmp, "int_weights");
    f.replace("backbone.norm_f.weight", zeros({16}, DType::i64));
    expect_error([&] { read_hf_dir(f.write()); }, {"backbone.norm_f.weight", "I64", "floating"});
  }
  {
    Folder f(tmp, "no_weights");
    write_config(f.dir, f.config);
    expect_error([&] { read_hf_dir(f.dir); }, {"model.safetensors", "model.safetensors.index.json"});
  }
  {
    Folder f(tmp, "lost_shard");
    write_config(f.dir, f.config);
    write_safetensors(f.dir + "/model-00001-of-00002.safetensors", f.tensors);
    json map;
    for (const auto& [name, t] : f.tensors) map[name] = "model-00001-of-00002.safetensors";
    map["backbone.norm_f.weight"] = "model-00002-of-00002.safetensors";
    std::ofstream(f.dir + "/model.safetensors.index.json") << json{{"weight_map", map}}.dump();
    expect_error([&] { read_hf_dir(f.dir); },
                 {"model-00002-of-00002.safetensors", "does not exist", "backbone.norm_f.weight"});
  }
  {
    Folder f(tmp, "no_config");
    write_safetensors(f.dir + "/model.safetensors", f.tensors);
    expect_error([&] { read_hf_dir(f.dir); }, {"no config.json"});
  }
}

TEST(HfInterop, ExportChecksTheCheckpoint) {
  TempDir tmp;
  Checkpoint c;
  c.model = random_tensors(hf_small_config(), 2);
  c.model.pop_back();  // drop norm_f
  c.config_yaml = mamba_config_yaml_text(hf_small_config());
  save_checkpoint(tmp / "short.h5", c);
  expect_error([&] { export_hf(tmp / "short.h5", tmp / "out", "none"); },
               {"short.h5", "backbone.norm_f.weight", "missing"});
  MambaConfig layernorm = hf_small_config();
  layernorm.rms_norm = false;
  c.model = random_tensors(hf_small_config(), 2);
  c.config_yaml = mamba_config_yaml_text(layernorm);
  save_checkpoint(tmp / "ln.h5", c);
  expect_error([&] { export_hf(tmp / "ln.h5", tmp / "out", "none"); }, {"ln.h5", "model.rms_norm"});
}

}  // namespace
