#include "train/tensorboard.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace serpent {

namespace {

// Protocol buffer encoding, the little needed: varints, fixed 64/32-bit, length-delimited.
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += char(uint8_t(v) | 0x80);
    v >>= 7;
  }
  out += char(uint8_t(v));
}
void key(std::string& out, int field, int wire) {
  varint(out, uint64_t(field) << 3 | uint64_t(wire));
}
void fixed64(std::string& out, int field, double v) {
  key(out, field, 1);
  char b[8];
  std::memcpy(b, &v, 8);
  out.append(b, 8);
}
void fixed32(std::string& out, int field, float v) {
  key(out, field, 5);
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}
void bytes(std::string& out, int field, const std::string& v) {
  key(out, field, 2);
  varint(out, v.size());
  out += v;
}
void int64_field(std::string& out, int field, int64_t v) {
  key(out, field, 0);
  varint(out, uint64_t(v));
}

// Event fields (event.proto): wall_time 1, step 2, file_version 3, summary 5, session_log 6.
// Summary.value 1; Summary.Value: tag 1, simple_value 2. SessionLog.status 1 (START = 1).
constexpr int kWallTime = 1, kStep = 2, kFileVersion = 3, kSummary = 5, kSessionLog = 6;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  const auto& t = crc_table();
  uint32_t c = 0xFFFFFFFFu;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) c = t[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir, int64_t resumed_at) {
  char host[256] = "host";
  gethostname(host, sizeof host - 1);
  // The second, then this process and the microsecond, so that a resumed run in the same second
  // starts a file of its own (opened exclusively: never one written before).
  const double t = now_seconds();
  char micro[8];
  std::snprintf(micro, sizeof micro, "%06lld", (long long)(std::fmod(t, 1.0) * 1e6));  // names sort by time
  path_ = str_cat(dir, "/events.out.tfevents.", int64_t(t), ".", host, ".", ::getpid(), ".", micro);
  f_ = std::fopen(path_.c_str(), "wbx");
  SERPENT_CHECK(f_, "cannot write the TensorBoard event file ", path_);
  std::string e;
  fixed64(e, kWallTime, now_seconds());
  bytes(e, kFileVersion, "brain.Event:2");
  record(e);
  if (resumed_at >= 0) {
    std::string log, restart;
    int64_field(log, 1, 1);  // SessionLog.status = START
    fixed64(restart, kWallTime, now_seconds());
    int64_field(restart, kStep, resumed_at);
    bytes(restart, kSessionLog, log);
    record(restart);
  }
}

TensorBoardWriter::~TensorBoardWriter() {
  if (f_) std::fclose(f_);
}

void TensorBoardWriter::scalars(int64_t step, double wall_time,
                                const std::vector<std::pair<std::string, double>>& values) {
  std::string summary;
  for (const auto& [tag, v] : values) {
    std::string value;
    bytes(value, 1, tag);
    fixed32(value, 2, float(v));
    bytes(summary, 1, value);
  }
  std::string e;
  fixed64(e, kWallTime, wall_time);
  int64_field(e, kStep, step);
  bytes(e, kSummary, summary);
  record(e);
}

void TensorBoardWriter::record(const std::string& event) {
  const uint64_t len = event.size();
  char header[12];
  std::memcpy(header, &len, 8);
  const uint32_t len_crc = masked_crc32c(header, 8);
  std::memcpy(header + 8, &len_crc, 4);
  const uint32_t data_crc = masked_crc32c(event.data(), event.size());
  const bool ok = std::fwrite(header, 1, 12, f_) == 12 &&
                  std::fwrite(event.data(), 1, event.size(), f_) == event.size() &&
                  std::fwrite(&data_crc, 1, 4, f_) == 4 && std::fflush(f_) == 0;
  SERPENT_CHECK(ok, "cannot write the TensorBoard event file ", path_, " (disk full?)");
}

}  // namespace serpent
