// Hugging Face interop without Python: the safetensors writer and reader (layout checked by hand),
// bf16 / fp16 decoding against hand-computed values, export and import through folders built
// here (single file, shards with an index, the reference's spelling and config, bf16 and fp16
// files), every error case, and the MambaConfig <-> YAML model section.
#include <sys/wait.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/bpe.h"
#include "helpers.h"
#include "layers/mamba.h"
#include "layers/mamba_config_yaml.h"
#include "io/checkpoint.h"
#include "io/hf.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace serpent;
using namespace serpent::testing;

namespace {

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ =
        fs::temp_directory_path() / str_cat("serpent_", info->test_suite_name(), "_", info->name(), "_", ::getpid());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string sub(const std::string& name) const {
    fs::create_directories(path_ / name);
    return (path_ / name).string();
  }

 private:
  fs::path path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

// A safetensors file assembled by hand: header JSON text, then raw bytes.
std::string handmade_safetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char(uint64_t(header.size()) >> (8 * i) & 0xff);
  return out + header + data;
}

template <class T>
std::string raw_bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

MambaConfig small_config() {
  MambaConfig c;
  c.d_model = 16;
  c.n_layer = 2;
  c.vocab_size = 11;  // padded to 16
  return c;
}

// A model whose every parameter is random (also the ones initialized to constants).
NamedTensors random_model(const MambaConfig& cfg, uint64_t seed) {
  Generator gen(seed);
  NamedTensors out;
  for (const auto& [name, shape] : mamba_parameter_shapes(cfg)) out.emplace_back(name, uniform(shape, -1, 1, gen));
  return out;
}

json transformers_config(const MambaConfig& cfg) {
  return json::parse(hf_config_json(cfg).dump());
}

void write_config(const std::string& dir, const json& j) {
  std::ofstream(dir + "/config.json") << j.dump(2);
}

void expect_same(const NamedTensors& a, const NamedTensors& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.shape(), b[i].second.shape()) << a[i].first;
    EXPECT_EQ(a[i].second.to_vector<float>(), b[i].second.to_vector<float>()) << a[i].first;
  }
}

// ---- safetensors ----

TEST(Safetensors, WriterLayoutMatchesTheFormat) {
  TempDir dir;
  Tensor a = from_vector<float>({1.5f, -2.f, 3.25f, 0.f, 1e-3f, 7.f}, {2, 3});
  Tensor b = from_vector<double>({0.1, 0.2, 0.3, 0.4}, {4});
  Tensor c = from_vector<int64_t>({-1, 2, 1LL << 40, 4}, {2, 2});
  Tensor d = from_vector<float>({1.f, -3.f, 0.15625f}, {3}, DType::bf16);
  Tensor e = from_vector<int32_t>({42}, {});
  const NamedTensors tensors = {{"a", a}, {"b.weight", b}, {"c", c}, {"d", d}, {"e", e}};
  write_safetensors(dir.file("t.safetensors"), tensors, {{"format", "pt"}});

  const std::string bytes = read_file(dir.file("t.safetensors"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(bytes[size_t(i)]);
  EXPECT_EQ((8 + n) % 8, 0u);
  const json header = json::parse(bytes.substr(8, n));
  EXPECT_EQ(header["__metadata__"]["format"], "pt");
  const std::string data = bytes.substr(8 + n);
  EXPECT_EQ(data.size(), 24u + 32u + 32u + 6u + 4u);
  const std::vector<std::tuple<std::string, std::string, std::vector<int64_t>, std::string>> want = {
      {"a", "F32", {2, 3}, raw_bytes(a.to_vector<float>())},
      {"b.weight", "F64", {4}, raw_bytes(b.to_vector<double>())},
      {"c", "I64", {2, 2}, raw_bytes(c.to_vector<int64_t>())},
      {"d", "BF16", {3}, std::string("\x80\x3f\x40\xc0\x20\x3e", 6)},  // 1, -3, 0.15625 as bf16, little-endian
      {"e", "I32", {}, raw_bytes(std::vector<int32_t>{42})}};
  for (const auto& [name, dtype, shape, raw] : want) {
    SCOPED_TRACE(name);
    const json& h = header[name];
    EXPECT_EQ(h["dtype"], dtype);
    EXPECT_EQ(h["shape"].get<std::vector<int64_t>>(), shape);
    const auto off = h["data_offsets"].get<std::vector<uint64_t>>();
    EXPECT_EQ(data.substr(off[0], off[1] - off[0]), raw);
  }

  SafetensorsReader r(dir.file("t.safetensors"));
  EXPECT_EQ(r.metadata().at("format"), "pt");
  EXPECT_EQ(r.entries().size(), 5u);
  for (const auto& [name, t] : tensors) {
    Tensor back = r.read(name);
    EXPECT_EQ(back.dtype(), t.dtype()) << name;
    EXPECT_EQ(back.shape(), t.shape()) << name;
    EXPECT_EQ(std::memcmp(back.data_ptr(), t.data_ptr(), t.nbytes()), 0) << name;
  }
}

TEST(Safetensors, DecodesHalfAndBfloatExactly) {
  TempDir dir;
  // fp16 bit patterns and their values, worked out by hand from sign, 5-bit exponent (bias 15)
  // and 10-bit mantissa.
  const std::vector<uint16_t> half = {0x3C00, 0xC000, 0x3555, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0xFC00, 0x8000, 0x7E00};
  const std::vector<float> half_values = {1.0f,
                                          -2.0f,
                                          0.333251953125f,             // 2^-2 * (1 + 341/1024)
                                          5.9604644775390625e-08f,     // 2^-24, the smallest subnormal
                                          6.0975551605224609375e-05f,  // 1023 * 2^-24, the largest subnormal
                                          6.103515625e-05f,            // 2^-14, the smallest normal
                                          65504.0f,                    // the largest finite
                                          -INFINITY,
                                          -0.0f,
                                          NAN};
  // bf16: the upper half of a float (8-bit exponent, bias 127, 7-bit mantissa).
  const std::vector<uint16_t> bf = {0x3F80, 0xC040, 0x3E20, 0x7F80, 0x0001};
  const std::vector<float> bf_values = {1.0f, -3.0f, 0.15625f, INFINITY,
                                        9.18354961579912115600575419705e-41f};  // 2^-133
  const std::string header =
      R"({"h":{"dtype":"F16","shape":[10],"data_offsets":[0,20]},"b":{"dtype":"BF16","shape":[5],"data_offsets":[20,30]}})";
  write_file(dir.file("x.safetensors"), handmade_safetensors(header, raw_bytes(half) + raw_bytes(bf)));

  SafetensorsReader r(dir.file("x.safetensors"));
  const std::vector<float> h = r.read_f32("h").to_vector<float>(), b = r.read_f32("b").to_vector<float>();
  for (size_t i = 0; i < half.size(); ++i) {
    SCOPED_TRACE(i);
    if (std::isnan(half_values[i])) {
      EXPECT_TRUE(std::isnan(h[i]));
    } else {
      EXPECT_EQ(h[i], half_values[i]);
      EXPECT_EQ(std::signbit(h[i]), std::signbit(half_values[i]));
    }
    EXPECT_EQ(half_to_float(half[i]) == h[i] || std::isnan(h[i]), true);
  }
  for (size_t i = 0; i < bf.size(); ++i) EXPECT_EQ(b[i], bf_values[i]) << i;
  EXPECT_EQ(r.read("b").dtype(), DType::bf16);
  EXPECT_EQ(r.read("h").dtype(), DType::f32);
}

TEST(Safetensors, DamagedFilesAreRefusedByName) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  const std::string ok = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  write_file(path, handmade_safetensors(ok, std::string(4, '\0')));  // 4 of 8 data bytes
  expect_error([&] { SafetensorsReader r(path); }, {path, "'w'", "outside", "truncated"});
  write_file(path, handmade_safetensors(ok, std::string(8, '\0')).substr(0, 30));
  expect_error([&] { SafetensorsReader r(path); }, {path, "header length"});
  write_file(path,
             handmade_safetensors(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, 0)));
  expect_error([&] { SafetensorsReader r(path); }, {path, "'w'", "8 bytes", "[3]", "expected 12"});
  write_file(path, handmade_safetensors(R"({"w":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}})", std::string(8, 0)));
  expect_error([&] { SafetensorsReader r(path); }, {path, "'w'", "unknown dtype 'F7'"});
  write_file(path, handmade_safetensors(R"({"w":)", ""));
  expect_error([&] { SafetensorsReader r(path); }, {path, "not valid JSON"});
  write_file(path, handmade_safetensors(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", "ab"));
  SafetensorsReader r(path);
  expect_error([&] { r.read_f32("w"); }, {path, "'w'", "U8", "floating"});
  expect_error([&] { r.read("nope"); }, {path, "no tensor 'nope'"});
}

// ---- MambaConfig <-> YAML ----

TEST(ModelYaml, RoundTripsEveryField) {
  MambaConfig c;
  c.d_model = 40;
  c.n_layer = 3;
  c.vocab_size = 50277;
  c.pad_vocab_size_multiple = 16;
  c.d_state = 8;
  c.d_conv = 3;
  c.expand = 3;
  c.dt_rank = 5;
  c.dt_min = 0.0015;
  c.dt_max = 0.2;
  c.dt_init_floor = 3e-5;
  c.conv_bias = false;
  c.bias = true;
  c.rms_norm = false;
  c.norm_epsilon = 1e-6;
  c.residual_in_fp32 = false;
  c.tie_embeddings = false;
  const std::string text = mamba_config_yaml_text(c);
  EXPECT_NE(text.find("norm_epsilon: 1.0e-06"), std::string::npos) << text;
  EXPECT_NE(text.find("dt_rank: 5"), std::string::npos) << text;
  const MambaConfig back = mamba_config_from_config_text(text, "test");
  EXPECT_EQ(mamba_config_yaml_text(back), text);
  EXPECT_EQ(back.dt_min, 0.0015);
  EXPECT_EQ(back.dt_init_floor, 3e-5);
  EXPECT_EQ(back.norm_epsilon, 1e-6);
  EXPECT_FALSE(back.conv_bias);
  EXPECT_TRUE(back.bias);
  EXPECT_EQ(mamba_config_keys().size(), 17u);

  const MambaConfig defaults = mamba_config_from_config_text("model:\n  d_model: 64\n  dt_rank: auto\n", "test");
  EXPECT_EQ(defaults.d_model, 64);
  EXPECT_EQ(defaults.dt_rank, 0);
  EXPECT_EQ(defaults.resolved_dt_rank(), 4);
  EXPECT_EQ(defaults.n_layer, MambaConfig{}.n_layer);
  EXPECT_NE(mamba_config_yaml_text(defaults).find("dt_rank: auto"), std::string::npos);
}

TEST(ModelYaml, ErrorsNameTheKey) {
  expect_error([] { mamba_config_from_config_text("model:\n  d_modle: 64\n", "cfg.yaml"); },
               {"cfg.yaml", "model.d_modle", "unknown key", "did you mean 'model.d_model'"});
  expect_error([] { mamba_config_from_config_text("model:\n  d_model: wide\n", "cfg.yaml"); },
               {"model.d_model", "integer", "wide"});
  expect_error([] { mamba_config_from_config_text("model:\n  rms_norm: 3\n", "cfg.yaml"); }, {"model.rms_norm"});
  expect_error([] { mamba_config_from_config_text("model:\n  dt_rank: big\n", "cfg.yaml"); },
               {"model.dt_rank", "auto"});
  expect_error([] { mamba_config_from_config_text("train:\n  steps: 3\n", "cfg.yaml"); },
               {"cfg.yaml", "no model section"});
  expect_error([] { mamba_config_from_config_text("model: [1, 2\n", "cfg.yaml"); }, {"cfg.yaml", "not valid YAML"});
}

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
    MambaConfig c = small_config();
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
  MambaLM model(small_config(), gen);
  const std::string tokenizer = dir.file("tok.json");
  std::ofstream(tokenizer) << R"({"added_tokens": [{"id": 50256, "content": "<|endoftext|>"}], "model": {}})";
  Checkpoint c;
  c.config_yaml = mamba_config_yaml_text(model.config()) + "data:\n  tokenizer: " + tokenizer + "\n";
  c.model = model.named_parameters();
  save_checkpoint(dir.file("a.h5"), c);

  const std::string out = dir.file("hf");
  const auto notes = export_hf(dir.file("a.h5"), out);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("tokenizer.json"), std::string::npos);
  EXPECT_EQ(read_file(out + "/tokenizer.json"), read_file(tokenizer));
  const json cfg = json::parse(read_file(out + "/config.json"));
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

  import_hf(out, dir.file("b.h5"));
  const Checkpoint back = load_checkpoint(dir.file("b.h5"));
  expect_same(back.model, c.model);
  EXPECT_FALSE(back.has_optim());
  const MambaConfig bc = mamba_config_from_config_text(back.config_yaml, "b.h5");
  EXPECT_EQ(bc.padded_vocab(), 16);
  EXPECT_EQ(bc.d_model, 16);
  EXPECT_EQ(bc.n_layer, 2);
  EXPECT_NE(back.config_yaml.find("# imported by serpent import-hf from"), std::string::npos);
  EXPECT_EQ(YAML::Load(back.config_yaml)["data"]["tokenizer"].as<std::string>(),
            fs::absolute(out + "/tokenizer.json").lexically_normal().string());

  // Exporting the import again gives the same files, byte for byte (tokenizer aside).
  const std::string again = dir.file("hf2");
  export_hf(dir.file("b.h5"), again, "none");
  EXPECT_EQ(read_file(again + "/model.safetensors"), read_file(out + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(again + "/tokenizer.json"));
}

TEST(HfInterop, ByteTokenizerAndMissingTokenizer) {
  TempDir dir;
  Checkpoint c;
  c.model = random_model(small_config(), 1);
  c.config_yaml = mamba_config_yaml_text(small_config()) + "data:\n  tokenizer: byte\n";
  save_checkpoint(dir.file("byte.h5"), c);
  auto notes = export_hf(dir.file("byte.h5"), dir.file("out1"));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("byte tokenizer"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir.file("out1/tokenizer.json")));
  EXPECT_EQ(json::parse(read_file(dir.file("out1/config.json")))["eos_token_id"], 0);  // vocab 11: no id 256
  MambaConfig with_eot = small_config();
  with_eot.vocab_size = 257;  // bytes and end-of-text, padded to 264
  Checkpoint e;
  e.model = random_model(with_eot, 1);
  e.config_yaml = mamba_config_yaml_text(with_eot) + "data:\n  tokenizer: byte\n";
  save_checkpoint(dir.file("eot.h5"), e);
  notes = export_hf(dir.file("eot.h5"), dir.file("out3"));
  const json eot = json::parse(read_file(dir.file("out3/config.json")));
  EXPECT_EQ(eot["eos_token_id"], 256);
  EXPECT_EQ(eot["vocab_size"], 264);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("wrote tokenizer.json"), std::string::npos);
  // The written tokenizer.json, read by the byte-level BPE that matches Hugging Face's ids on the
  // tokenizer test set, encodes and decodes as the byte tokenizer.
  const BpeTokenizer exported(dir.file("out3/tokenizer.json"));
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
                                  read_file(data_path("pride_and_prejudice_ch1.txt"))}) {
    const std::vector<int32_t> ids = bytes.encode(text);
    EXPECT_EQ(exported.encode(text), ids) << text.substr(0, 40);
    EXPECT_EQ(exported.decode_bytes(ids), text);
  }

  c.config_yaml = mamba_config_yaml_text(small_config()) + "data:\n  tokenizer: " + dir.file("gone.json") + "\n";
  save_checkpoint(dir.file("gone.h5"), c);
  expect_error([&] { export_hf(dir.file("gone.h5"), dir.file("out2")); },
               {"tokenizer", "gone.json", "does not exist", "--tokenizer"});
  EXPECT_FALSE(fs::exists(dir.file("out2/config.json")));  // nothing written before the check
}

TEST(HfInterop, ImportsShardsReferenceSpellingAndBf16) {
  TempDir dir;
  const MambaConfig cfg = small_config();
  const NamedTensors model = random_model(cfg, 7);
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
  MambaConfig cfg = small_config();
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
  import_hf(hf, dir.file("ref.h5"));
  const Checkpoint c = load_checkpoint(dir.file("ref.h5"));
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

// A valid single-file HF folder to break in one way per case.
struct Folder {
  TempDir& tmp;
  std::string dir;
  json config;
  NamedTensors tensors;
  Folder(TempDir& t, const std::string& name) : tmp(t), dir(t.sub(name)), config(transformers_config(small_config())) {
    tensors = random_model(small_config(), 11);
  }
  std::string write() {
    write_config(dir, config);
    write_safetensors(dir + "/model.safetensors", tensors);
    return dir;
  }
  void drop(const std::string& name) {
    std::erase_if(tensors, [&](const auto& kv) { return kv.first == name; });
  }
  void replace(const std::string& name, Tensor t) {
    for (auto& kv : tensors)
      if (kv.first == name) kv.second = t;
  }
};

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
  c.model = random_model(small_config(), 2);
  c.model.pop_back();  // drop norm_f
  c.config_yaml = mamba_config_yaml_text(small_config());
  save_checkpoint(tmp.file("short.h5"), c);
  expect_error([&] { export_hf(tmp.file("short.h5"), tmp.file("out"), "none"); },
               {"short.h5", "backbone.norm_f.weight", "missing"});
  MambaConfig layernorm = small_config();
  layernorm.rms_norm = false;
  c.model = random_model(small_config(), 2);
  c.config_yaml = mamba_config_yaml_text(layernorm);
  save_checkpoint(tmp.file("ln.h5"), c);
  expect_error([&] { export_hf(tmp.file("ln.h5"), tmp.file("out"), "none"); }, {"ln.h5", "model.rms_norm"});
}

TEST(HfInterop, CommandsRunEndToEnd) {
  TempDir tmp;
  Folder f(tmp, "hf");
  const std::string dir = f.write();
  auto run = [](const std::string& args) {
    const std::string cmd = std::string(SERPENT_BINARY) + " " + args + " 2>&1";
    FILE* pipe = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
    const int rc = pclose(pipe);
    return std::pair{WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
  };
  auto [rc, out] = run("import-hf --in " + dir + " --out " + tmp.file("m.h5"));
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = run("export-hf --checkpoint " + tmp.file("m.h5") + " --out " + tmp.file("again"));
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("no data.tokenizer"), std::string::npos) << out;
  SafetensorsReader exported(tmp.file("again/model.safetensors"));
  for (const auto& [name, t] : f.tensors)
    EXPECT_EQ(exported.read(name).to_vector<float>(), t.to_vector<float>()) << name;
  f.config["model_type"] = "mamba2";
  f.write();
  std::tie(rc, out) = run("import-hf --in " + dir + " --out " + tmp.file("m2.h5"));
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("serpent import-hf: error:"), std::string::npos) << out;
  EXPECT_NE(out.find("mamba2"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(tmp.file("m2.h5")));
}

}  // namespace
