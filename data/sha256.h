// SHA-256 (FIPS 180-4), for the checksums of shards in a dataset manifest.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace serpent {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::array<uint8_t, 32> digest();  // finishes; the object must not be updated afterwards
  std::string hex_digest();          // lower-case hex of digest()

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view data);
// The SHA-256 of a file's content, read in chunks; errors name the file.
std::string sha256_file(const std::string& path);

}  // namespace serpent
