// llm.c-format token shards: writer, memory-mapped reader, shard lists.
#include "data/shard.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "data/sha256.h"

namespace serpent {

static_assert(std::endian::native == std::endian::little, "shards are little-endian; so must the host be");

TokenWidth token_width_for(int64_t vocab_size) {
  SERPENT_CHECK(vocab_size > 0 && vocab_size <= (int64_t(1) << 32), "bad vocabulary size ", vocab_size);
  return vocab_size <= 65536 ? TokenWidth::u16 : TokenWidth::u32;
}

std::string write_shard(const std::string& path, const int32_t* ids, size_t n, TokenWidth width) {
  int32_t header[256] = {};
  header[0] = width == TokenWidth::u16 ? kShardMagicU16 : kShardMagicU32;
  header[1] = width == TokenWidth::u16 ? kShardVersionU16 : kShardVersionU32;
  SERPENT_CHECK(n <= size_t(INT32_MAX), "write_shard ", path, ": ", n, " tokens do not fit the header's int32 count");
  header[2] = int32_t(n);
  const int64_t limit = width == TokenWidth::u16 ? 65535 : int64_t(UINT32_MAX);
  std::vector<char> body(n * width_bytes(width));
  for (size_t i = 0; i < n; ++i) {
    SERPENT_CHECK(ids[i] >= 0 && ids[i] <= limit, "write_shard ", path, ": token ", ids[i], " at position ", i,
                  " does not fit a ", width == TokenWidth::u16 ? "uint16" : "uint32", " shard");
    if (width == TokenWidth::u16) {
      const uint16_t v = uint16_t(ids[i]);
      std::memcpy(body.data() + 2 * i, &v, 2);
    } else {
      const uint32_t v = uint32_t(ids[i]);
      std::memcpy(body.data() + 4 * i, &v, 4);
    }
  }
  Sha256 sha;
  sha.update(header, sizeof header);
  sha.update(body.data(), body.size());
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  SERPENT_CHECK(f, "cannot create '", tmp, "': ", std::strerror(errno));
  const bool ok = std::fwrite(header, 1, sizeof header, f) == sizeof header &&
                  std::fwrite(body.data(), 1, body.size(), f) == body.size();
  const bool closed = std::fclose(f) == 0;
  SERPENT_CHECK(ok && closed, "error writing '", tmp, "' (disk full?)");
  SERPENT_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename '", tmp, "' to '", path,
                "': ", std::strerror(errno));
  return sha.hex_digest();
}

ShardReader::ShardReader(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  SERPENT_CHECK(fd >= 0, "cannot open shard '", path, "': ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail("cannot stat shard '", path, "'");
  }
  const size_t bytes = size_t(st.st_size);
  if (bytes < kShardHeaderBytes) {
    ::close(fd);
    fail("shard '", path, "' has ", bytes, " bytes, fewer than the ", kShardHeaderBytes,
         "-byte header: not a token shard, or truncated");
  }
  void* m = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  SERPENT_CHECK(m != MAP_FAILED, "cannot map shard '", path, "': ", std::strerror(errno));
  map_ = m;
  map_bytes_ = bytes;
  int32_t header[3];
  std::memcpy(header, map_, sizeof header);
  const int32_t magic = header[0], version = header[1], count = header[2];
  if (magic == kShardMagicU16) {
    width_ = TokenWidth::u16;
    if (version != kShardVersionU16) {
      close();
      fail("shard '", path, "': uint16 shard (magic ", magic, ") with version ", version, "; expected ",
           kShardVersionU16);
    }
  } else if (magic == kShardMagicU32) {
    width_ = TokenWidth::u32;
    if (version != kShardVersionU32) {
      close();
      fail("shard '", path, "': uint32 shard (magic ", magic, ") with version ", version, "; expected ",
           kShardVersionU32);
    }
  } else {
    close();
    fail("shard '", path, "' has magic ", magic, "; expected ", kShardMagicU16, " (uint16 tokens) or ", kShardMagicU32,
         " (uint32 tokens): not a token shard");
  }
  const size_t want = kShardHeaderBytes + size_t(std::max(count, 0)) * width_bytes(width_);
  if (count < 0 || want != bytes) {
    close();
    fail("shard '", path, "': header says ", count, " tokens (", want, " bytes with the header) but the file has ",
         bytes, " bytes: truncated or corrupt");
  }
  ntok_ = count;
  tokens_ = static_cast<const char*>(map_) + kShardHeaderBytes;
}

void ShardReader::close() {
  if (map_) ::munmap(map_, map_bytes_);
  map_ = nullptr;
  tokens_ = nullptr;
}

ShardReader::~ShardReader() {
  close();
}

ShardReader::ShardReader(ShardReader&& o) noexcept {
  *this = std::move(o);
}

ShardReader& ShardReader::operator=(ShardReader&& o) noexcept {
  if (this != &o) {
    close();
    path_ = std::move(o.path_);
    map_ = std::exchange(o.map_, nullptr);
    map_bytes_ = o.map_bytes_;
    tokens_ = std::exchange(o.tokens_, nullptr);
    ntok_ = o.ntok_;
    width_ = o.width_;
  }
  return *this;
}

void ShardReader::read(int64_t start, int64_t n, int64_t* out) const {
  SERPENT_CHECK(start >= 0 && n >= 0 && start + n <= ntok_, "shard '", path_, "': read of tokens [", start, ", ",
                start + n, ") outside its ", ntok_, " tokens");
  if (width_ == TokenWidth::u16) {
    const uint16_t* p = static_cast<const uint16_t*>(tokens_) + start;
    for (int64_t i = 0; i < n; ++i) out[i] = p[i];
  } else {
    const uint32_t* p = static_cast<const uint32_t*>(tokens_) + start;
    for (int64_t i = 0; i < n; ++i) out[i] = p[i];
  }
}

void ShardReader::check_vocab(int64_t vocab_size) const {
  for (int64_t i = 0; i < ntok_; ++i)
    SERPENT_CHECK(at(i) < vocab_size, "shard '", path_, "': token ", at(i), " at position ", i,
                  " is outside the vocabulary of ", vocab_size, " ids");
}

ShardSequenceWriter::ShardSequenceWriter(std::string dir, std::string prefix, int64_t shard_tokens, TokenWidth width)
    : dir_(std::move(dir)), prefix_(std::move(prefix)), shard_tokens_(shard_tokens), width_(width) {
  SERPENT_CHECK(shard_tokens_ > 0 && shard_tokens_ <= INT32_MAX, "shard size must be in [1, 2^31), got ",
                shard_tokens_);
}

void ShardSequenceWriter::append(const int32_t* ids, size_t n) {
  total_ += int64_t(n);
  while (n > 0) {
    const size_t take = std::min(n, size_t(shard_tokens_) - pending_.size());
    pending_.insert(pending_.end(), ids, ids + take);
    ids += take;
    n -= take;
    if (pending_.size() == size_t(shard_tokens_)) flush();
  }
}

void ShardSequenceWriter::flush() {
  char name[64];
  std::snprintf(name, sizeof name, "_%06zu.bin", shards_.size());
  const std::string path = (std::filesystem::path(dir_) / (prefix_ + name)).string();
  const std::string sha = write_shard(path, pending_.data(), pending_.size(), width_);
  shards_.push_back({path, int64_t(pending_.size()), sha});
  pending_.clear();
}

const std::vector<ShardSequenceWriter::Shard>& ShardSequenceWriter::finish() {
  if (!pending_.empty()) flush();
  return shards_;
}

bool shard_of_split(const std::string& file_name, const std::string& split) {
  if (file_name.size() < 4 || file_name.compare(file_name.size() - 4, 4, ".bin") != 0) return false;
  const std::string stem = file_name.substr(0, file_name.size() - 4);
  auto delimiter = [](char c) { return c == '_' || c == '-' || c == '.'; };
  for (size_t at = stem.find(split); at != std::string::npos; at = stem.find(split, at + 1)) {
    const size_t end = at + split.size();
    if ((at == 0 || delimiter(stem[at - 1])) && (end == stem.size() || delimiter(stem[end]))) return true;
  }
  return false;
}

std::vector<std::string> find_shards(const std::string& where, const std::string& split) {
  std::vector<std::string> out;
  std::error_code ec;
  if (std::filesystem::is_directory(where, ec)) {
    for (const auto& e : std::filesystem::directory_iterator(where, ec)) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && shard_of_split(name, split)) out.push_back(e.path().string());
    }
    SERPENT_CHECK(!out.empty(), "no ", split, "_*.bin shards (nor llm.c's *_", split, "_*.bin) in folder '", where,
                  "'");
  } else {
    // A pattern names the training shards; the val shards are the same pattern with its last
    // "train" read as "val" (fineweb_train_*.bin -> fineweb_val_*.bin).
    std::string pattern = where;
    if (split == "val") {
      const size_t at = pattern.rfind("train");
      SERPENT_CHECK(at != std::string::npos, "the pattern '", where, "' names no val shards (it has no 'train' to ",
                    "read as 'val')");
      pattern.replace(at, 5, "val");
    }
    glob_t g{};
    const int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
    for (size_t i = 0; rc == 0 && i < g.gl_pathc; ++i) out.push_back(g.gl_pathv[i]);
    globfree(&g);
    SERPENT_CHECK(!out.empty(), "no shard files match '", pattern, "'");
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace serpent
