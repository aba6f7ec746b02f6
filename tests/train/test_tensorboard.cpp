// TensorBoard event files (train/tensorboard.h), checked against the TFRecord and Event formats
// with a protobuf wire decoder written here: the CRC-32C of the standard check value, every
// record's framing and masked checksums, the file_version event, and the scalars of a real run
// matching its metrics.jsonl; a resumed run's file starts with a SessionLog START at its step.
// (The read-back with the tensorboard Python package runs on the GPU machine:
// tools/tensorboard_readback.py.)
#include <cstring>
#include <filesystem>
#include <map>

#include "tests/helpers.h"
#include "train/metrics.h"
#include "train/tensorboard.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace serpent;
using namespace serpent::testing;

namespace {

// A protobuf message as field number -> values (varints as integers, fixed32/64 as raw bits,
// length-delimited as bytes).
struct Fields {
  std::multimap<int, uint64_t> ints;
  std::multimap<int, std::string> bytes;
};

uint64_t read_varint(const std::string& s, size_t& i) {
  uint64_t v = 0;
  for (int shift = 0; i < s.size(); shift += 7) {
    const uint8_t b = uint8_t(s[i++]);
    v |= uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  ADD_FAILURE() << "truncated varint";
  return v;
}

Fields decode(const std::string& s) {
  Fields f;
  for (size_t i = 0; i < s.size();) {
    const uint64_t k = read_varint(s, i);
    const int field = int(k >> 3), wire = int(k & 7);
    if (wire == 0) {
      f.ints.emplace(field, read_varint(s, i));
    } else if (wire == 1 || wire == 5) {
      uint64_t v = 0;
      std::memcpy(&v, s.data() + i, wire == 1 ? 8 : 4);
      i += wire == 1 ? 8 : 4;
      f.ints.emplace(field, v);
    } else if (wire == 2) {
      const size_t n = size_t(read_varint(s, i));
      f.bytes.emplace(field, s.substr(i, n));
      i += n;
    } else {
      ADD_FAILURE() << "unexpected wire type " << wire;
      break;
    }
  }
  return f;
}

// The events of a file, each record's framing and checksums checked.
std::vector<Fields> read_events(const std::string& path) {
  const std::string b = read_text_file(path);
  std::vector<Fields> out;
  for (size_t i = 0; i < b.size();) {
    uint64_t len = 0;
    uint32_t len_crc = 0, data_crc = 0;
    std::memcpy(&len, b.data() + i, 8);
    std::memcpy(&len_crc, b.data() + i + 8, 4);
    EXPECT_EQ(len_crc, masked_crc32c(b.data() + i, 8));
    const std::string data = b.substr(i + 12, size_t(len));
    std::memcpy(&data_crc, b.data() + i + 12 + len, 4);
    EXPECT_EQ(data_crc, masked_crc32c(data.data(), data.size()));
    out.push_back(decode(data));
    i += 12 + len + 4;
  }
  return out;
}

float as_float(uint64_t bits) {
  float f;
  const uint32_t b = uint32_t(bits);
  std::memcpy(&f, &b, 4);
  return f;
}

std::vector<std::string> event_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST(TensorBoard, Crc32cOfTheCheckValue) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);  // the CRC-32C check value (RFC 3720)
  EXPECT_EQ(crc32c("", 0), 0u);
}

TEST(TensorBoard, ARunsScalarsAreItsMetrics) {
  TempDir dir;
  write_text_dataset(dir / "data");
  Config c;
  c.model.d_model = 16;
  c.model.n_layer = 1;
  c.model.vocab_size = 257;
  c.model.d_state = 4;
  c.data.path = dir / "data";
  c.data.seq_len = 32;
  c.data.micro_batch_size = 2;
  c.data.global_batch_tokens = 64;
  c.train.name = "tb";
  c.train.max_steps = 6;
  c.train.log_every = 2;
  c.optim.warmup_steps = 0;
  c.eval.every = 4;
  c.eval.batches = 2;
  c.log.runs_dir = dir / "runs";
  c.log.tensorboard = true;
  TrainerOptions quiet;
  quiet.progress = false;
  Trainer(c, quiet).run(4);  // stopped at step 4, then resumed
  quiet.resume = "auto";
  Trainer(c, quiet).run();
  const std::vector<MetricsRecord> m = read_metrics(c.run_dir() + "/metrics.jsonl");
  const std::vector<std::string> files = event_files(c.run_dir());
  ASSERT_EQ(files.size(), 2u);

  std::map<std::pair<int64_t, std::string>, float> seen;
  for (size_t f = 0; f < files.size(); ++f) {
    const std::vector<Fields> events = read_events(files[f]);
    ASSERT_GE(events.size(), 2u);
    ASSERT_EQ(events[0].bytes.count(3), 1u);
    EXPECT_EQ(events[0].bytes.find(3)->second, "brain.Event:2");
    size_t first = 1;
    if (f == 1) {  // the resumed file: a SessionLog START at step 4
      ASSERT_EQ(events[1].bytes.count(6), 1u);
      EXPECT_EQ(events[1].ints.find(2)->second, 4u);
      EXPECT_EQ(decode(events[1].bytes.find(6)->second).ints.find(1)->second, 1u);
      first = 2;
    }
    for (size_t e = first; e < events.size(); ++e) {
      const int64_t step = int64_t(events[e].ints.find(2)->second);
      const Fields summary = decode(events[e].bytes.find(5)->second);
      for (auto it = summary.bytes.find(1); it != summary.bytes.end() && it->first == 1; ++it) {
        const Fields value = decode(it->second);
        seen[{step, value.bytes.find(1)->second}] = as_float(value.ints.find(2)->second);
      }
    }
  }
  for (const MetricsRecord& r : m) {
    SCOPED_TRACE(r.step);
    ASSERT_TRUE(seen.count(std::make_pair(r.step, std::string("train/loss"))));
    auto at = [&](const char* tag) { return seen[std::make_pair(r.step, std::string(tag))]; };
    EXPECT_EQ(at("train/loss"), float(r.loss));
    EXPECT_EQ(at("train/lr"), float(r.lr));
    EXPECT_EQ(at("train/grad_norm"), float(r.grad_norm));
    if (r.val_loss) {
      EXPECT_EQ(at("val/loss"), float(*r.val_loss));
    }
  }
  EXPECT_TRUE(seen.count(std::make_pair(int64_t(6), std::string("val/ppl"))));
}
