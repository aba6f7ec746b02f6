// TensorBoard scalars (log.tensorboard): an event file in the run folder that `tensorboard
// --logdir runs/` plots, written without TensorFlow. The format: a sequence of TFRecords
// (uint64 length, masked CRC-32C of the length, the bytes, masked CRC-32C of the bytes), each an
// Event protocol buffer (tensorflow/core/util/event.proto): the first holds file_version
// "brain.Event:2", each later one a wall time, a step and a Summary of {tag, simple_value}
// values. A resumed run starts a new file with a SessionLog START at its step, which makes
// TensorBoard drop what the earlier file logged after that step.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace serpent {

class TensorBoardWriter {
 public:
  // Creates <dir>/events.out.tfevents.<seconds>.<host>.<pid>.<microseconds>; resumed_at >= 0 marks
  // a restart there.
  TensorBoardWriter(const std::string& dir, int64_t resumed_at);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // One event of scalars at `step`, flushed.
  void scalars(int64_t step, double wall_time, const std::vector<std::pair<std::string, double>>& values);
  const std::string& path() const { return path_; }

 private:
  void record(const std::string& event);
  std::string path_;
  std::FILE* f_ = nullptr;
};

// CRC-32C (Castagnoli), and the masked form TFRecord stores; exposed for the tests.
uint32_t crc32c(const void* data, size_t n);
uint32_t masked_crc32c(const void* data, size_t n);

}  // namespace serpent
