#include "io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

namespace serpent {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian, as this host");

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the limit the reference implementation enforces

// Element sizes of every dtype the format defines (so that any valid file's header checks out,
// even where serpent cannot use a tensor's type).
const std::map<std::string, uint64_t>& dtype_sizes() {
  static const std::map<std::string, uint64_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8}};
  return sizes;
}

const char* safetensors_dtype(DType dt) {
  switch (dt) {
    case DType::f32:
      return "F32";
    case DType::f64:
      return "F64";
    case DType::bf16:
      return "BF16";
    case DType::i32:
      return "I32";
    case DType::i64:
      return "I64";
  }
  return "?";
}

}  // namespace

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h >> 15) << 31, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    const float magnitude = std::ldexp(float(mantissa), -24);
    std::memcpy(&bits, &magnitude, 4);
    bits |= sign;
  } else if (exponent == 31) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // infinity, or NaN keeping its payload
  } else {
    bits = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

SafetensorsReader::SafetensorsReader(const std::string& path) : path_(path) {
  std::error_code ec;
  SERPENT_CHECK(std::filesystem::is_regular_file(path, ec), "safetensors file ", path, " does not exist");
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  in_.open(path, std::ios::binary);
  SERPENT_CHECK(in_.good(), "cannot open safetensors file ", path);
  SERPENT_CHECK(file_size >= 8, "safetensors file ", path, " is ", file_size,
                " bytes long, too short for the 8-byte header length");
  unsigned char len_bytes[8];
  in_.read(reinterpret_cast<char*>(len_bytes), 8);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  SERPENT_CHECK(header_len <= kMaxHeaderBytes && header_len <= file_size - 8, "safetensors file ", path,
                ": the header length ", header_len, " does not fit the file's ", file_size,
                " bytes (truncated, or not a safetensors file)");
  std::string header(size_t(header_len), '\0');
  in_.read(header.data(), std::streamsize(header_len));
  SERPENT_CHECK(in_.good(), "safetensors file ", path, ": cannot read its ", header_len, "-byte header");
  data_start_ = 8 + header_len;
  const uint64_t data_size = file_size - data_start_;

  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const nlohmann::json::exception& e) {
    fail("safetensors file ", path, ": the header is not valid JSON (", e.what(), ")");
  }
  SERPENT_CHECK(j.is_object(), "safetensors file ", path, ": the header is not a JSON object");
  for (const auto& [name, v] : j.items()) {
    if (name == "__metadata__") {
      SERPENT_CHECK(v.is_object(), "safetensors file ", path, ": __metadata__ is not an object");
      for (const auto& [k, s] : v.items()) {
        SERPENT_CHECK(s.is_string(), "safetensors file ", path, ": __metadata__ value '", k, "' is not a string");
        metadata_[k] = s.get<std::string>();
      }
      continue;
    }
    const std::string where = str_cat("safetensors file ", path, ": tensor '", name, "'");
    SERPENT_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"), where,
                  " needs dtype, shape and data_offsets");
    SafetensorsEntry e;
    e.name = name;
    SERPENT_CHECK(v["dtype"].is_string(), where, ": dtype is not a string");
    e.dtype = v["dtype"].get<std::string>();
    auto size = dtype_sizes().find(e.dtype);
    SERPENT_CHECK(size != dtype_sizes().end(), where, " has unknown dtype '", e.dtype, "'");
    SERPENT_CHECK(v["shape"].is_array(), where, ": shape is not an array");
    // Sizes are bounded by the data they must describe before any product is formed.
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      SERPENT_CHECK(d.is_number_unsigned(), where, ": shape ", v["shape"].dump(),
                    " holds a non-integer or negative size");
      const uint64_t n = d.get<uint64_t>();
      SERPENT_CHECK(n == 0 || numel <= data_size / n, where, ": shape ", v["shape"].dump(),
                    " holds more elements than the ", data_size, " data bytes can");
      numel *= n;
      e.shape.push_back(int64_t(n));
    }
    const auto& off = v["data_offsets"];
    SERPENT_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
                  where, ": data_offsets must be two non-negative integers, got ", off.dump());
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    SERPENT_CHECK(e.begin <= e.end && e.end <= data_size, where, ": data_offsets [", e.begin, ", ", e.end,
                  "] fall outside the ", data_size, " data bytes (truncated file?)");
    SERPENT_CHECK(e.end - e.begin == uint64_t(shape_numel(e.shape)) * size->second, where, ": ", e.end - e.begin,
                  " bytes for shape ", shape_str(e.shape), " of ", e.dtype, ", expected ",
                  uint64_t(shape_numel(e.shape)) * size->second);
    entries_.push_back(std::move(e));
  }
  std::sort(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) { return a.begin < b.begin; });
  // The format's data buffer is exactly its tensors, in some order: no overlap, no gap, nothing
  // after the last one.
  uint64_t at = 0;
  for (size_t i = 0; i < entries_.size(); ++i) {
    SERPENT_CHECK(entries_[i].begin >= at, "safetensors file ", path, ": tensors '", entries_[i - 1].name, "' and '",
                  entries_[i].name, "' overlap");
    SERPENT_CHECK(entries_[i].begin == at, "safetensors file ", path, ": ", entries_[i].begin - at,
                  " bytes before tensor '", entries_[i].name, "' belong to no tensor");
    at = entries_[i].end;
  }
  SERPENT_CHECK(at == data_size, "safetensors file ", path, ": ", data_size - at,
                " bytes after the last tensor belong to no tensor (a damaged or appended file?)");
}

const SafetensorsEntry* SafetensorsReader::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

const SafetensorsEntry& SafetensorsReader::entry(const std::string& name) const {
  const SafetensorsEntry* e = find(name);
  SERPENT_CHECK(e, "safetensors file ", path_, " has no tensor '", name, "'");
  return *e;
}

void SafetensorsReader::read_bytes(const SafetensorsEntry& e, void* dst) const {
  in_.clear();
  in_.seekg(std::streamoff(data_start_ + e.begin));
  in_.read(static_cast<char*>(dst), std::streamsize(e.end - e.begin));
  SERPENT_CHECK(in_.good(), "safetensors file ", path_, ": cannot read the data of tensor '", e.name, "'");
}

Tensor SafetensorsReader::read(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  static const std::map<std::string, DType> native = {
      {"F32", DType::f32}, {"F64", DType::f64}, {"BF16", DType::bf16}, {"I32", DType::i32}, {"I64", DType::i64}};
  if (auto it = native.find(e.dtype); it != native.end()) {
    Tensor t = Tensor::empty(e.shape, it->second);
    read_bytes(e, t.data_ptr());
    return t;
  }
  SERPENT_CHECK(e.dtype == "F16", "safetensors file ", path_, ": tensor '", name, "' has dtype ", e.dtype,
                "; serpent reads F32, F64, BF16, F16, I32 and I64");
  std::vector<uint16_t> half(size_t(shape_numel(e.shape)));
  read_bytes(e, half.data());
  Tensor t = Tensor::empty(e.shape, DType::f32);
  float* out = t.data<float>();
  for (size_t i = 0; i < half.size(); ++i) out[i] = half_to_float(half[i]);
  return t;
}

Tensor SafetensorsReader::read_f32(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  SERPENT_CHECK(e.dtype == "F32" || e.dtype == "F64" || e.dtype == "BF16" || e.dtype == "F16", "safetensors file ",
                path_, ": tensor '", name, "' has dtype ", e.dtype, "; expected a floating type (F32, BF16, F16, F64)");
  return read(name).to(DType::f32);
}

void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<Tensor> host;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    SERPENT_CHECK(!name.empty() && name != "__metadata__", "write_safetensors ", path, ": invalid tensor name '", name,
                  "'");
    SERPENT_CHECK(names.insert(name).second, "write_safetensors ", path, ": tensor '", name, "' appears twice");
    SERPENT_CHECK(t.defined(), "write_safetensors ", path, ": tensor '", name, "' is undefined");
    host.push_back(t.to(Device::cpu()));
    header[name] = {
        {"dtype", safetensors_dtype(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts at 8 + text.size(), a multiple of 8

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  SERPENT_CHECK(out.good(), "write_safetensors: cannot create ", path);
  unsigned char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>(uint64_t(text.size()) >> (8 * i));
  out.write(reinterpret_cast<const char*>(len_bytes), 8);
  out.write(text.data(), std::streamsize(text.size()));
  for (const Tensor& t : host) out.write(static_cast<const char*>(t.data_ptr()), std::streamsize(t.nbytes()));
  out.close();
  SERPENT_CHECK(out.good(), "write_safetensors: writing ", path, " failed (disk full?)");
}

}  // namespace serpent
