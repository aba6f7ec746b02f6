// The run folder's metrics.jsonl: one JSON object per logged step (docs/TRAINING.md),
//   {"step": 120, "loss": 2.31, "lr": 0.0029, "grad_norm": 0.53, "tokens": 245760,
//    "tokens_per_s": 12345.6, "val_loss": 2.28, "val_ppl": 9.78}
// loss and grad_norm are means over the steps since the previous record (null when every one of
// them was skipped as non-finite, with "skipped" counting those); lr is the rate of the record's
// step; tokens counts all training tokens so far; val_loss / val_ppl appear when the step was
// evaluated. Doubles are written in their shortest exact form, so reading gives back the values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace serpent {

struct MetricsRecord {
  int64_t step = 0;
  double loss = 0;
  double lr = 0;
  double grad_norm = 0;
  int64_t tokens = 0;
  double tokens_per_s = 0;
  int64_t skipped = 0;  // non-finite steps since the previous record (written only when > 0)
  std::optional<double> val_loss, val_ppl;
  double wall_time = 0;               // when the record was written: seconds since 1970 (UTC), as TensorBoard's
  double ms_per_step = 0;             // mean over the steps since the previous record
  std::optional<double> mfu;          // GPU: matmul FLOPs done over the bf16 peak
  std::optional<double> peak_memory;  // bytes: the GPU allocator's peak, or the cpu's peak resident set
};

// One line of JSON, without the newline.
std::string metrics_json(const MetricsRecord& r);
MetricsRecord parse_metrics_json(const std::string& line, const std::string& where);

// Every record of a metrics.jsonl file (none when it does not exist). A malformed line is an
// error naming the file and line, except a last line without its newline (a write cut short),
// which is dropped.
std::vector<MetricsRecord> read_metrics(const std::string& path);

// Appends records to a metrics.jsonl file, one flushed line each.
class MetricsWriter {
 public:
  // keep_up_to_step < 0 starts an empty file; otherwise the records of an earlier session with
  // step <= keep_up_to_step are kept (a resumed run drops what was logged after its checkpoint).
  MetricsWriter(const std::string& path, int64_t keep_up_to_step);
  void write(const MetricsRecord& r);
  // The records in the file, kept ones included, in order.
  const std::vector<MetricsRecord>& records() const { return records_; }

 private:
  std::string path_;
  std::vector<MetricsRecord> records_;
};

}  // namespace serpent
