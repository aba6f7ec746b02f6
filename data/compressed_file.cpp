#include "data/compressed_file.h"

#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <vector>
#ifdef SERPENT_ZSTD
#include <zstd.h>
#endif

#include "core/error.h"

namespace serpent {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The file's first bytes must be `magic`; `what` names the format in the error.
void check_signature(const std::string& path, const unsigned char* magic, size_t n, const char* what, const char* fix) {
  std::ifstream in(path, std::ios::binary);
  SERPENT_CHECK(in, "cannot open '", path, "'");
  std::vector<unsigned char> head(n, 0);
  in.read(reinterpret_cast<char*>(head.data()), std::streamsize(n));
  SERPENT_CHECK(size_t(in.gcount()) == n && std::equal(head.begin(), head.end(), magic), "'", path, "' is not ", what,
                " data (it does not start with the ", what, " signature); ", fix);
}

class PlainFile : public CompressedFile {
 public:
  explicit PlainFile(const std::string& path) : CompressedFile(path), in_(path, std::ios::binary) {
    SERPENT_CHECK(in_, "cannot open '", path, "'");
  }
  size_t read(char* buf, size_t n) override {
    in_.read(buf, std::streamsize(n));
    SERPENT_CHECK(!in_.bad(), "error reading '", path_, "'");
    const size_t got = size_t(in_.gcount());
    offset_ += got;
    bytes_out_ += got;
    return got;
  }
  uint64_t file_offset() const override { return offset_; }

 private:
  std::ifstream in_;
  uint64_t offset_ = 0;
};

class GzipFile : public CompressedFile {
 public:
  explicit GzipFile(const std::string& path) : CompressedFile(path) {
    static const unsigned char magic[] = {0x1f, 0x8b};
    check_signature(path, magic, 2, "gzip", "rename it if it is plain text, or compress it with gzip");
    f_ = gzopen(path.c_str(), "rb");
    SERPENT_CHECK(f_, "cannot open '", path, "'");
    gzbuffer(f_, 1 << 18);
  }
  ~GzipFile() override { gzclose(f_); }
  size_t read(char* buf, size_t n) override {
    const int got = gzread(f_, buf, unsigned(n));
    int err = Z_OK;
    const char* msg = gzerror(f_, &err);
    SERPENT_CHECK(got >= 0 && err == Z_OK, "'", path_, "' is damaged or truncated (zlib: ", msg, ")");
    bytes_out_ += uint64_t(got);
    return size_t(got);
  }
  uint64_t file_offset() const override { return uint64_t(gzoffset(f_)); }

 private:
  gzFile f_ = nullptr;
};

#ifdef SERPENT_ZSTD
class ZstdFile : public CompressedFile {
 public:
  explicit ZstdFile(const std::string& path) : CompressedFile(path), in_(path, std::ios::binary) {
    static const unsigned char magic[] = {0x28, 0xb5, 0x2f, 0xfd};
    check_signature(path, magic, 4, "zstd", "rename it if it is plain text, or compress it with zstd");
    SERPENT_CHECK(in_, "cannot open '", path, "'");
    ds_ = ZSTD_createDStream();
    SERPENT_CHECK(ds_, "zstd: cannot create a decompression stream for '", path, "'");
    ZSTD_initDStream(ds_);
    inbuf_.resize(ZSTD_DStreamInSize());
  }
  ~ZstdFile() override { ZSTD_freeDStream(ds_); }
  size_t read(char* buf, size_t n) override {
    ZSTD_outBuffer out{buf, n, 0};
    while (out.pos == 0) {
      if (in_pos_ == in_size_) {
        in_.read(inbuf_.data(), std::streamsize(inbuf_.size()));
        SERPENT_CHECK(!in_.bad(), "error reading '", path_, "'");
        in_size_ = size_t(in_.gcount());
        in_pos_ = 0;
        if (in_size_ == 0) {
          // A complete stream ends on a frame boundary (last_ == 0); anything else is cut short.
          SERPENT_CHECK(last_ == 0, "'", path_, "' is damaged or truncated (zstd: the last frame is incomplete)");
          return 0;
        }
      }
      ZSTD_inBuffer in{inbuf_.data(), in_size_, in_pos_};
      last_ = ZSTD_decompressStream(ds_, &out, &in);
      SERPENT_CHECK(!ZSTD_isError(last_), "'", path_, "' is damaged or truncated (zstd: ", ZSTD_getErrorName(last_),
                    ")");
      offset_ += in.pos - in_pos_;
      in_pos_ = in.pos;
    }
    bytes_out_ += out.pos;
    return out.pos;
  }
  uint64_t file_offset() const override { return offset_; }

 private:
  std::ifstream in_;
  ZSTD_DStream* ds_ = nullptr;
  std::vector<char> inbuf_;
  size_t in_size_ = 0, in_pos_ = 0, last_ = 0;
  uint64_t offset_ = 0;
};
#endif

}  // namespace

CompressedFile::CompressedFile(const std::string& path) : path_(path) {}

std::unique_ptr<CompressedFile> CompressedFile::open(const std::string& path) {
  if (ends_with(path, ".gz")) return std::make_unique<GzipFile>(path);
  if (ends_with(path, ".zst")) {
#ifdef SERPENT_ZSTD
    return std::make_unique<ZstdFile>(path);
#else
    fail("'", path, "' is zstd-compressed, but this build of serpent has no zstd support (install libzstd-dev and ",
         "configure again)");
#endif
  }
  return std::make_unique<PlainFile>(path);
}

std::string read_file(const std::string& path) {
  const auto f = CompressedFile::open(path);
  std::string out;
  char buf[1 << 16];
  while (size_t n = f->read(buf, sizeof buf)) out.append(buf, n);
  return out;
}

bool have_zstd() {
#ifdef SERPENT_ZSTD
  return true;
#else
  return false;
#endif
}

}  // namespace serpent
