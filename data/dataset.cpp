#include "data/dataset.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "data/sha256.h"
#include "data/shard.h"

namespace fs = std::filesystem;

namespace serpent {

namespace {

constexpr const char* kCacheName = ".verified.json";

// What a full read of a shard established, valid while its size and modification time stay.
struct Verified {
  int64_t size = 0, mtime_ns = 0;
  std::string sha256;  // of the whole file
  int64_t max_id = -1;
};

struct FileStamp {
  int64_t size = 0, mtime_ns = 0;
};

FileStamp stamp(const std::string& path) {
  struct stat st {};
  SERPENT_CHECK(::stat(path.c_str(), &st) == 0, "cannot read shard '", path, "'");
  return {int64_t(st.st_size), int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

// One pass over the file: its sha256 and its largest token id.
Verified read_in_full(const std::string& path, TokenWidth width) {
  std::ifstream in(path, std::ios::binary);
  SERPENT_CHECK(in, "cannot read shard '", path, "'");
  Sha256 sha;
  Verified v;
  std::vector<char> buf(size_t(1) << 22);  // a multiple of 4 bytes: no token straddles two reads
  int64_t offset = 0;
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    const int64_t n = in.gcount();
    if (n <= 0) break;
    sha.update(buf.data(), size_t(n));
    const int64_t begin = std::max<int64_t>(0, int64_t(kShardHeaderBytes) - offset);
    if (width == TokenWidth::u16) {
      for (int64_t i = begin; i + 2 <= n; i += 2) {
        uint16_t t;
        std::memcpy(&t, buf.data() + i, 2);
        v.max_id = std::max<int64_t>(v.max_id, t);
      }
    } else {
      for (int64_t i = begin; i + 4 <= n; i += 4) {
        uint32_t t;
        std::memcpy(&t, buf.data() + i, 4);
        v.max_id = std::max<int64_t>(v.max_id, t);
      }
    }
    offset += n;
  }
  v.sha256 = sha.hex_digest();
  return v;
}

std::map<std::string, Verified> read_cache(const std::string& dir) {
  std::map<std::string, Verified> out;
  std::ifstream in(fs::path(dir) / kCacheName);
  if (!in) return out;
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    for (const auto& [file, e] : j.at("shards").items())
      out[file] = {e.at("size"), e.at("mtime_ns"), e.at("sha256"), e.at("max_id")};
  } catch (const nlohmann::json::exception&) {
    return {};  // a damaged cache is only a cache: everything is read again
  }
  return out;
}

// False when the folder is not writable (a shared, read-only dataset): then every run reads the
// shards in full.
bool write_cache(const std::string& dir, const std::map<std::string, Verified>& cache) {
  nlohmann::json shards = nlohmann::json::object();
  for (const auto& [file, v] : cache)
    shards[file] = {{"size", v.size}, {"mtime_ns", v.mtime_ns}, {"sha256", v.sha256}, {"max_id", v.max_id}};
  const fs::path tmp = fs::path(dir) / (std::string(kCacheName) + "." + std::to_string(::getpid()) + ".tmp");
  {
    std::ofstream out(tmp);
    out << nlohmann::json{{"format", "serpent-dataset-verified"}, {"version", 1}, {"shards", shards}}.dump(1) << "\n";
    if (!out.flush()) return false;
  }
  std::error_code ec;
  fs::rename(tmp, fs::path(dir) / kCacheName, ec);
  return !ec;
}

// The position of the first token >= vocab_size, for the error message.
int64_t first_outside(const ShardReader& r, int64_t vocab_size) {
  for (int64_t i = 0; i < r.size(); ++i)
    if (r.at(i) >= vocab_size) return i;
  return -1;
}

struct Listed {
  std::string path, split, sha256;
  int64_t tokens = -1;
};

std::vector<Listed> read_manifest(const std::string& dir, std::vector<std::string>& warnings) {
  const std::string path = (fs::path(dir) / "manifest.json").string();
  nlohmann::json m;
  try {
    std::ifstream in(path);
    m = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path, " is not valid JSON (", e.what(), ")");
  }
  std::vector<Listed> listed;
  std::set<std::string> names;
  try {
    for (const auto& s : m.at("shards")) {
      Listed l;
      const std::string file = s.at("file");
      SERPENT_CHECK(file.find('/') == std::string::npos && file != ".." && !file.empty(), path, ": shard file '", file,
                    "' is not a file name in the dataset folder");
      SERPENT_CHECK(names.insert(file).second, path, ": shard ", file, " is listed twice");
      l.path = (fs::path(dir) / file).string();
      l.split = s.at("split");
      SERPENT_CHECK(l.split == "train" || l.split == "val", path, ": shard ", file, " has split '", l.split,
                    "'; expected train or val");
      l.tokens = s.at("tokens");
      l.sha256 = s.at("sha256");
      listed.push_back(std::move(l));
    }
    for (const char* split : {"train", "val"}) {
      int64_t sum = 0;
      for (const Listed& l : listed) sum += l.split == split ? l.tokens : 0;
      const int64_t total = m.at("tokens").at(split);
      SERPENT_CHECK(total == sum, path, ": tokens.", split, " is ", total, " but its shards hold ", sum);
    }
  } catch (const nlohmann::json::exception& e) {
    fail(path, " lacks a field or has one of the wrong type (", e.what(), ")");
  }
  // Shards in the folder that the manifest does not list are not part of the dataset.
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const bool shard = shard_of_split(name, "train") || shard_of_split(name, "val");
    if (shard && !names.count(name))
      warnings.push_back(str_cat("warning: ", e.path().string(), " is not listed in ", path, "; it is not used"));
  }
  return listed;
}

}  // namespace

DatasetShards open_dataset(const std::string& where, int64_t vocab_size,
                           const std::function<void(int64_t, int64_t)>& progress) {
  DatasetShards out;
  std::error_code ec;
  const bool folder = fs::is_directory(where, ec);
  std::vector<Listed> shards;
  const bool manifest = folder && fs::is_regular_file(fs::path(where) / "manifest.json", ec);
  if (manifest) {
    shards = read_manifest(where, out.warnings);
  } else {
    for (const char* split : {"train", "val"}) {
      try {
        for (const std::string& p : find_shards(where, split)) shards.push_back({p, split, "", -1});
      } catch (const Error&) {
        if (std::string(split) == "train") throw;
      }
    }
  }

  std::map<std::string, Verified> cache = folder ? read_cache(where) : std::map<std::string, Verified>{};
  std::vector<std::pair<size_t, FileStamp>> to_read;
  int64_t total_bytes = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    const Listed& s = shards[i];
    SERPENT_CHECK(fs::exists(s.path, ec), "shard ", s.path, " is listed in ", where,
                  "/manifest.json but missing; prepare the dataset again");
    const ShardReader r(s.path);  // the header and the file size agree
    SERPENT_CHECK(s.tokens < 0 || r.size() == s.tokens, "shard ", s.path, " holds ", r.size(),
                  " tokens but the manifest lists ", s.tokens, "; prepare the dataset again");
    const FileStamp st = stamp(s.path);
    auto it = cache.find(fs::path(s.path).filename().string());
    const bool cached = it != cache.end() && it->second.size == st.size && it->second.mtime_ns == st.mtime_ns &&
                        (s.sha256.empty() || it->second.sha256 == s.sha256);
    if (!cached) to_read.push_back({i, st}), total_bytes += st.size;
  }
  // The full reads run on every core, a shard each; the first error (in shard order) is reported.
  std::vector<Verified> read(to_read.size());
  std::vector<std::string> errors(to_read.size());
  int64_t done = 0;
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t k = 0; k < to_read.size(); ++k) {
    const auto& [i, st] = to_read[k];
    const Listed& s = shards[i];
    try {
      const ShardReader r(s.path);
      read[k] = read_in_full(s.path, r.width());
      SERPENT_CHECK(s.sha256.empty() || read[k].sha256 == s.sha256, "shard ", s.path, " has sha256 ", read[k].sha256,
                    " but the manifest lists ", s.sha256,
                    ": the file changed after prepare; prepare the dataset again");
    } catch (const std::exception& e) {
      errors[k] = e.what();
    }
#pragma omp critical(dataset_progress)
    {
      done += st.size;
      if (progress) progress(done, total_bytes);
    }
  }
  for (size_t k = 0; k < to_read.size(); ++k) {
    if (!errors[k].empty()) fail(errors[k]);
    read[k].size = to_read[k].second.size;
    read[k].mtime_ns = to_read[k].second.mtime_ns;
    cache[fs::path(shards[to_read[k].first].path).filename().string()] = read[k];
    out.bytes_read += read[k].size;
  }
  if (folder && !to_read.empty() && !write_cache(where, cache))
    out.warnings.push_back(str_cat("note: cannot write ", where, "/", kCacheName,
                                   " (a read-only folder?): the shards are read in full at every start"));
  for (const Listed& s : shards) {
    const int64_t max_id = cache.at(fs::path(s.path).filename().string()).max_id;
    if (max_id >= vocab_size) {
      const ShardReader r(s.path);
      fail("shard ", s.path, " holds token id ", max_id, " (first outside at position ", first_outside(r, vocab_size),
           "), outside the model's vocabulary of ", vocab_size, " ids (model.vocab_size)");
    }
    (s.split == "train" ? out.train : out.val).push_back(s.path);
  }
  SERPENT_CHECK(!out.train.empty(), where, " holds no train shards");
  return out;
}

}  // namespace serpent
