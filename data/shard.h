// Token shards in llm.c's format (docs/DATA.md, "Token shards"): a header of 256 little-endian int32
// (1024 bytes) -- [0] magic, [1] version, [2] number of tokens, the rest zero -- then the tokens.
//   magic 20240520, version 1: uint16 tokens (vocabularies up to 65536 ids, GPT-2, GPT-NeoX);
//   magic 20240801, version 7: uint32 tokens (larger vocabularies).
// Files written by llm.c's data scripts load here and ours load there.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace serpent {

constexpr int32_t kShardMagicU16 = 20240520, kShardVersionU16 = 1;
constexpr int32_t kShardMagicU32 = 20240801, kShardVersionU32 = 7;
constexpr size_t kShardHeaderBytes = 256 * sizeof(int32_t);

enum class TokenWidth { u16, u32 };
// uint16 when every id of the vocabulary fits, else uint32.
TokenWidth token_width_for(int64_t vocab_size);
inline size_t width_bytes(TokenWidth w) {
  return w == TokenWidth::u16 ? 2 : 4;
}

// Writes a whole shard, through a temporary file renamed into place so a reader never sees a
// partial one. Ids must be >= 0 and fit the width. Returns the SHA-256 of the file.
std::string write_shard(const std::string& path, const int32_t* ids, size_t n, TokenWidth width);

// A shard mapped read-only into memory. Opening checks the magic, the version that goes with it,
// and that the header's token count matches the file size; a failed check throws an error that
// names the file and what was wrong.
class ShardReader {
 public:
  explicit ShardReader(const std::string& path);
  ~ShardReader();
  ShardReader(ShardReader&& o) noexcept;
  ShardReader& operator=(ShardReader&& o) noexcept;
  ShardReader(const ShardReader&) = delete;
  ShardReader& operator=(const ShardReader&) = delete;

  const std::string& path() const { return path_; }
  int64_t size() const { return ntok_; }  // tokens
  TokenWidth width() const { return width_; }
  int64_t at(int64_t i) const {
    return width_ == TokenWidth::u16 ? int64_t(static_cast<const uint16_t*>(tokens_)[i])
                                     : int64_t(static_cast<const uint32_t*>(tokens_)[i]);
  }
  // Copies tokens [start, start + n) into out as int64; throws when the range leaves the shard.
  void read(int64_t start, int64_t n, int64_t* out) const;
  // Throws, naming the file, the position and the id, when a token is >= vocab_size.
  void check_vocab(int64_t vocab_size) const;

 private:
  void close();
  std::string path_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  const void* tokens_ = nullptr;
  int64_t ntok_ = 0;
  TokenWidth width_ = TokenWidth::u16;
};

// Shards written one after another as `dir/prefix_000000.bin`, `..._000001.bin`, ..., each
// holding `shard_tokens` tokens except the last.
class ShardSequenceWriter {
 public:
  struct Shard {
    std::string path;
    int64_t tokens;
    std::string sha256;
  };
  ShardSequenceWriter(std::string dir, std::string prefix, int64_t shard_tokens, TokenWidth width);
  void append(const int32_t* ids, size_t n);
  // Writes the last, partial shard (if any tokens are pending) and returns every shard written.
  const std::vector<Shard>& finish();
  int64_t tokens() const { return total_; }

 private:
  void flush();
  std::string dir_, prefix_;
  int64_t shard_tokens_;
  TokenWidth width_;
  std::vector<int32_t> pending_;
  std::vector<Shard> shards_;
  int64_t total_ = 0;
};

// Shard files for a split, sorted; throws when there are none. In a folder: the .bin files whose
// name holds the split as a word: `train_000000.bin` (prepare's), and llm.c's
// `fineweb_train_000001.bin` or `TinyStories_val.bin`. A glob pattern (`dir/fineweb_train_*.bin`)
// names the train shards, and with its last "train" read as "val" the val shards.
std::vector<std::string> find_shards(const std::string& where, const std::string& split);
// Whether a file name is a shard of the split in a folder, as find_shards decides.
bool shard_of_split(const std::string& file_name, const std::string& split);

}  // namespace serpent
