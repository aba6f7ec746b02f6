// The safetensors format (Hugging Face's tensor files), read and written by our own code:
// an 8-byte little-endian header length n, n bytes of JSON
//   {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"<key>": "<string>"}}
// padded with spaces, then the raw little-endian tensor bytes; offsets count from the end of the
// header.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "layers/module.h"

namespace serpent {

// IEEE half precision to float, exactly (subnormals, infinities and NaN included).
float half_to_float(uint16_t bits);

struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // as in the file: "F32", "BF16", "F16", "F64", "I64", ...
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data section
};

class SafetensorsReader {
 public:
  // Reads and checks the header: its length against the file size, the JSON, every entry's dtype,
  // shape and offsets. Throws serpent::Error naming the file (and the tensor) on any problem.
  explicit SafetensorsReader(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }  // in file order
  const SafetensorsEntry* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The tensor in its own dtype where serpent has one (F32, F64, BF16, I32, I64); F16, which
  // serpent has no dtype for, comes back as f32.
  Tensor read(const std::string& name) const;
  // Any floating tensor (F32, F64, BF16, F16) converted to f32.
  Tensor read_f32(const std::string& name) const;

 private:
  const SafetensorsEntry& entry(const std::string& name) const;
  void read_bytes(const SafetensorsEntry& e, void* dst) const;

  std::string path_;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
  uint64_t data_start_ = 0;
  mutable std::ifstream in_;
};

// Writes tensors (any device; f32, f64, bf16, i32 or i64 as F32, F64, BF16, I32, I64) in the given
// order, with string metadata. The header is padded so that the data starts 8-byte aligned.
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace serpent
