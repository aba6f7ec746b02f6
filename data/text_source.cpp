// Documents from files, folders and JSONL (see data/text_source.h).
#include "data/text_source.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/compressed_file.h"

namespace serpent {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_jsonl(const std::string& p) {
  return ends_with(p, ".jsonl") || ends_with(p, ".jsonl.gz") || ends_with(p, ".jsonl.zst");
}

// Files serpent prepare reads, by name: a document per file, or a document per JSONL line.
const char* kAccepted =
    ".txt, .text and .md files (one document each), .jsonl, .jsonl.gz and .jsonl.zst (one document per line), "
    "and folders of .txt and JSONL files";

bool is_text_name(const std::string& p) {
  return ends_with(p, ".txt") || ends_with(p, ".text") || ends_with(p, ".md");
}

// A file named on the command line without an extension is read as text when it looks like text:
// no NUL byte in its first 64 kB (binary formats have them early).
bool looks_like_text(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::string head(1 << 16, '\0');
  in.read(head.data(), std::streamsize(head.size()));
  head.resize(size_t(in.gcount()));
  return head.find('\0') == std::string::npos;
}

}  // namespace

// One open input: a whole-file document, or a JSONL line reader.
struct DocumentReader::Stream {
  std::string path;
  bool jsonl = false;
  bool text_done = false;
  std::unique_ptr<CompressedFile> file;
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
      const size_t n = file->read(buf.data() + old, 1 << 20);
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
      const bool bare = fs::path(in).extension().empty();
      SERPENT_CHECK(is_text_name(in) || is_jsonl(in) || (bare && looks_like_text(in)), "input '", in,
                    "' is not a kind of file serpent prepare reads: it takes ", kAccepted,
                    bare ? " (this file holds binary data)" : "");
      SERPENT_CHECK(!is_text_name(in) || looks_like_text(in), "input '", in,
                    "' holds binary data (a NUL byte in its first 64 kB), not text");
      SERPENT_CHECK(!ends_with(in, ".zst") || have_zstd(), "input '", in,
                    "' is zstd-compressed, but this build of serpent has no zstd support (install libzstd-dev and ",
                    "configure again)");
      files_.push_back(in);
    }
  }
  for (const std::string& f : files_) bytes_total_ += uint64_t(fs::file_size(f));
}

DocumentReader::~DocumentReader() = default;

bool DocumentReader::open_next_file() {
  if (stream_) {
    bytes_before_ += uint64_t(fs::file_size(stream_->path));
    if (stream_->file) text_before_ += stream_->file->bytes_out();
  }
  stream_.reset();
  if (file_index_ >= files_.size()) return false;
  stream_ = std::make_unique<Stream>();
  stream_->path = files_[file_index_++];
  stream_->jsonl = is_jsonl(stream_->path);
  if (stream_->jsonl) stream_->file = CompressedFile::open(stream_->path);
  return true;
}

uint64_t DocumentReader::bytes_done() const {
  if (!stream_) return bytes_before_;
  if (stream_->file) return bytes_before_ + stream_->file->file_offset();
  return bytes_before_;
}

uint64_t DocumentReader::text_bytes_done() const {
  return text_before_ + (stream_ && stream_->file ? stream_->file->bytes_out() : 0);
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
      text_before_ += text.size();
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
