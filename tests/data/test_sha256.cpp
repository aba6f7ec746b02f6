// SHA-256 (data/sha256.h): the standard's test vectors, incremental hashing, files.
#include "data/sha256.h"
#include "tests/helpers.h"

namespace serpent {
namespace {

using testing::TempDir;
using testing::write_file;

// Test vectors from FIPS 180-4's examples and NIST's SHA-256 example values.
TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 5000; ++i) data.push_back(char(i * 7 + i / 13));
  for (size_t step : {1, 3, 63, 64, 65, 1000}) {
    Sha256 h;
    for (size_t i = 0; i < data.size(); i += step) h.update(data.data() + i, std::min(step, data.size() - i));
    EXPECT_EQ(h.hex_digest(), sha256_hex(data)) << "chunks of " << step;
  }
  TempDir dir;
  write_file(dir / "f", data);
  EXPECT_EQ(sha256_file(dir / "f"), sha256_hex(data));
}

}  // namespace
}  // namespace serpent
