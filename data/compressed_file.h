// Reading an input file in chunks, decompressed by its name: `.gz` through zlib, `.zst` through
// libzstd (the Pile and SlimPajama ship as .jsonl.zst), anything else as it is. A compressed name
// must hold compressed data (its signature is checked first: zlib would read plain text as is),
// and a damaged or truncated stream is an error naming the file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace serpent {

class CompressedFile {
 public:
  explicit CompressedFile(const std::string& path);
  virtual ~CompressedFile() = default;
  // Up to n decompressed bytes into buf; 0 at the end.
  virtual size_t read(char* buf, size_t n) = 0;
  // Bytes of the file itself consumed so far (compressed bytes for .gz and .zst).
  virtual uint64_t file_offset() const = 0;
  uint64_t bytes_out() const { return bytes_out_; }  // decompressed bytes returned so far
  const std::string& path() const { return path_; }

  static std::unique_ptr<CompressedFile> open(const std::string& path);

 protected:
  std::string path_;
  uint64_t bytes_out_ = 0;
};

// The whole decompressed content of a file. Errors name the file.
std::string read_file(const std::string& path);

// Whether this build reads .zst (libzstd found when it was configured).
bool have_zstd();

}  // namespace serpent
