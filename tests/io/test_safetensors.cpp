// The safetensors writer and reader (io/safetensors.h): the layout checked by hand, bf16 and fp16
// decoded against hand-computed values, damaged files refused by name.
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <tuple>

#include "io/safetensors.h"
#include "tests/helpers.h"

using nlohmann::json;
using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(Safetensors, WriterLayoutMatchesTheFormat) {
  TempDir dir;
  Tensor a = from_vector<float>({1.5f, -2.f, 3.25f, 0.f, 1e-3f, 7.f}, {2, 3});
  Tensor b = from_vector<double>({0.1, 0.2, 0.3, 0.4}, {4});
  Tensor c = from_vector<int64_t>({-1, 2, 1LL << 40, 4}, {2, 2});
  Tensor d = from_vector<float>({1.f, -3.f, 0.15625f}, {3}, DType::bf16);
  Tensor e = from_vector<int32_t>({42}, {});
  const NamedTensors tensors = {{"a", a}, {"b.weight", b}, {"c", c}, {"d", d}, {"e", e}};
  write_safetensors(dir / "t.safetensors", tensors, {{"format", "pt"}});

  const std::string bytes = read_text_file(dir / "t.safetensors");
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

  SafetensorsReader r(dir / "t.safetensors");
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
  write_file(dir / "x.safetensors", handmade_safetensors(header, raw_bytes(half) + raw_bytes(bf)));

  SafetensorsReader r(dir / "x.safetensors");
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
  const std::string path = dir / "bad.safetensors";
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

TEST(Safetensors, EveryDataByteBelongsToATensorAndSizesAreBounded) {
  TempDir dir;
  const std::string path = dir / "bad.safetensors";
  const std::string ok = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  write_file(path, handmade_safetensors(ok, std::string(8, '\0') + "appended"));
  expect_error([&] { SafetensorsReader r(path); }, {path, "8 bytes after the last tensor"});
  write_file(path,
             handmade_safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(12, '\0')));
  expect_error([&] { SafetensorsReader r(path); }, {path, "4 bytes before tensor 'w'"});
  write_file(path, handmade_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                        R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                        std::string(8, '\0')));
  expect_error([&] { SafetensorsReader r(path); }, {path, "overlap"});
  // A shape whose element count overflows 64 bits, with offsets that a wrapped product would match.
  write_file(path, handmade_safetensors(
                       R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,0]}})", ""));
  expect_error([&] { SafetensorsReader r(path); }, {path, "'w'", "more elements than"});
}

}  // namespace
