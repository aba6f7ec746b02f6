// Documents from files, folders and JSONL (see data/text_source.h).
#include "data/text_source.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace serpent {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_jsonl(const std::string& p) {
  return ends_with(p, ".jsonl") || ends_with(p, ".jsonl.gz");
}

// Reads a gzip (or, transparently, plain) file in chunks; throws naming the file on a damaged
// or truncated stream.
class GzFile {
 public:
  explicit GzFile(const std::string& path) : path_(path), f_(nullptr) {
    // zlib would read a file that is not gzip as plain text; a name that says .gz must be gzip.
    if (ends_with(path, ".gz")) {
      std::ifstream in(path, std::ios::binary);
      SERPENT_CHECK(in, "cannot open '", path, "'");
      unsigned char magic[2] = {0, 0};
      in.read(reinterpret_cast<char*>(magic), 2);
      SERPENT_CHECK(in.gcount() == 2 && magic[0] == 0x1f && magic[1] == 0x8b, "'", path,
                    "' is not gzip data (it does not start with the gzip signature 1f 8b); rename it if it is ",
                    "plain text, or compress it with gzip");
    }
    f_ = gzopen(path.c_str(), "rb");
    SERPENT_CHECK(f_, "cannot open '", path, "'");
    gzbuffer(f_, 1 << 18);
  }
  ~GzFile() { gzclose(f_); }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  // Up to n bytes into buf; 0 at the end.
  size_t read(char* buf, size_t n) {
    const int got = gzread(f_, buf, unsigned(n));
    int err = Z_OK;
    const char* msg = gzerror(f_, &err);
    SERPENT_CHECK(got >= 0 && err == Z_OK, "'", path_, "' is damaged or truncated (zlib: ", msg, ")");
    return size_t(got);
  }
  uint64_t offset() const { return uint64_t(gzoffset(f_)); }

 private:
  std::string path_;
  gzFile f_;
};

}  // namespace

std::string read_file(const std::string& path) {
  if (ends_with(path, ".gz")) {
    GzFile f(path);
    std::string out;
    char buf[1 << 16];
    while (size_t n = f.read(buf, sizeof buf)) out.append(buf, n);
    return out;
  }
  std::ifstream in(path, std::ios::binary);
  SERPENT_CHECK(in, "cannot open '", path, "'");
  std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  SERPENT_CHECK(!in.bad(), "error reading '", path, "'");
  return out;
}

// One open input: a whole-file document, or a JSONL line reader.
struct DocumentReader::Stream {
  std::string path;
  bool jsonl = false;
  bool text_done = false;
  std::unique_ptr<GzFile> gz;
  std::string buf;
  size_t pos = 0;
  bool eof = false;
  int64_t line = 0;

  // The next line without its '\n'; false at the end of the file.
  bool next_line(std::string& out) {
    for (;;) {
      const size_t nl = buf.find('\n', pos);
      if (nl != std::string::npos) {
        out.assign(buf, pos, nl - pos);
        pos = nl + 1;
        ++line;
        return true;
      }
      if (eof) {
        if (pos >= buf.size()) return false;
        out.assign(buf, pos, std::string::npos);
        pos = buf.size();
        ++line;
        return true;
      }
      buf.erase(0, pos);
      pos = 0;
      const size_t old = buf.size();
      buf.resize(old + (1 << 20));
      const size_t n = gz->read(buf.data() + old, 1 << 20);
      buf.resize(old + n);
      if (n == 0) eof = true;
    }
  }
};

DocumentReader::DocumentReader(const std::vector<std::string>& inputs, std::string text_key)
    : text_key_(std::move(text_key)) {
  SERPENT_CHECK(!inputs.empty(), "no input given");
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(in, fs::directory_options::follow_directory_symlink, ec);
           it != fs::recursive_directory_iterator(); it.increment(ec)) {
        SERPENT_CHECK(!ec, "cannot list folder '", in, "': ", ec.message());
        if (!it->is_regular_file()) continue;
        const std::string p = it->path().string();
        if (ends_with(p, ".txt") || is_jsonl(p))
          found.push_back(p);
        else
          ++skipped_files_;
      }
      SERPENT_CHECK(!ec, "cannot list folder '", in, "': ", ec.message());
      std::sort(found.begin(), found.end());
      files_.insert(files_.end(), found.begin(), found.end());
    } else {
      SERPENT_CHECK(fs::is_regular_file(in, ec), "input '", in, "' is not a file or a folder");
      files_.push_back(in);
    }
  }
  for (const std::string& f : files_) bytes_total_ += uint64_t(fs::file_size(f));
}

DocumentReader::~DocumentReader() = default;

bool DocumentReader::open_next_file() {
  if (stream_) bytes_before_ += uint64_t(fs::file_size(stream_->path));
  stream_.reset();
  if (file_index_ >= files_.size()) return false;
  stream_ = std::make_unique<Stream>();
  stream_->path = files_[file_index_++];
  stream_->jsonl = is_jsonl(stream_->path);
  if (stream_->jsonl) stream_->gz = std::make_unique<GzFile>(stream_->path);
  return true;
}

uint64_t DocumentReader::bytes_done() const {
  if (!stream_) return bytes_before_;
  if (stream_->gz) return bytes_before_ + stream_->gz->offset();
  return bytes_before_;
}

bool DocumentReader::next(std::string& text) {
  for (;;) {
    if (!stream_ && !open_next_file()) return false;
    Stream& s = *stream_;
    if (!s.jsonl) {
      if (s.text_done) {
        if (!open_next_file()) return false;
        continue;
      }
      text = read_file(s.path);
      s.text_done = true;
      return true;
    }
    std::string line;
    if (!s.next_line(line)) {
      if (!open_next_file()) return false;
      continue;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string why;
    try {
      nlohmann::json j = nlohmann::json::parse(line);
      if (!j.is_object())
        why = "not a JSON object";
      else if (!j.contains(text_key_))
        why = str_cat("no \"", text_key_, "\" member");
      else if (!j[text_key_].is_string())
        why = str_cat("\"", text_key_, "\" is not a string");
      else
        text = j[text_key_].get<std::string>();
    } catch (const nlohmann::json::exception& e) {
      why = str_cat("invalid JSON (", e.what(), ")");
    }
    if (why.empty()) return true;
    ++broken_lines_;
    // On a terminal, start a new line: a progress bar may be drawn on the current one.
    std::fprintf(stderr, "%s%s:%lld: skipped broken line: %s\n", isatty(2) ? "\n" : "", s.path.c_str(),
                 (long long)s.line, why.c_str());
  }
}

}  // namespace serpent
