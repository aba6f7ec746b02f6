#include "train/metrics.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace fs = std::filesystem;

namespace serpent {

namespace {

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

double number_from(const nlohmann::json& j, const char* key, const std::string& where) {
  SERPENT_CHECK(j.contains(key), where, ": record lacks \"", key, "\"");
  const nlohmann::json& v = j[key];
  if (v.is_null()) return NAN;
  SERPENT_CHECK(v.is_number(), where, ": \"", key, "\" must be a number or null, got ", v.dump());
  return v.get<double>();
}

}  // namespace

std::string metrics_json(const MetricsRecord& r) {
  nlohmann::ordered_json j;
  j["step"] = r.step;
  j["loss"] = number_or_null(r.loss);
  j["lr"] = r.lr;
  j["grad_norm"] = number_or_null(r.grad_norm);
  j["tokens"] = r.tokens;
  j["tokens_per_s"] = std::round(r.tokens_per_s * 10) / 10;
  if (r.skipped > 0) j["skipped"] = r.skipped;
  if (r.val_loss) j["val_loss"] = number_or_null(*r.val_loss);
  if (r.val_ppl) j["val_ppl"] = number_or_null(*r.val_ppl);
  j["time"] = std::round(r.wall_time * 1000) / 1000;
  j["ms_per_step"] = std::round(r.ms_per_step * 1000) / 1000;
  if (r.mfu) j["mfu"] = std::round(*r.mfu * 1e5) / 1e5;
  if (r.peak_memory) j["peak_memory_gib"] = std::round(*r.peak_memory / double(1 << 30) * 1000) / 1000;
  return j.dump();
}

MetricsRecord parse_metrics_json(const std::string& line, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    fail(where, ": not a JSON object (", e.what(), ")");
  }
  SERPENT_CHECK(j.is_object(), where, ": expected a JSON object, got ", j.type_name());
  MetricsRecord r;
  SERPENT_CHECK(j.contains("step") && j["step"].is_number_integer(), where, ": record lacks an integer \"step\"");
  r.step = j["step"].get<int64_t>();
  r.loss = number_from(j, "loss", where);
  r.lr = number_from(j, "lr", where);
  r.grad_norm = number_from(j, "grad_norm", where);
  r.tokens = int64_t(number_from(j, "tokens", where));
  r.tokens_per_s = number_from(j, "tokens_per_s", where);
  if (j.contains("skipped")) r.skipped = int64_t(number_from(j, "skipped", where));
  if (j.contains("val_loss")) r.val_loss = number_from(j, "val_loss", where);
  if (j.contains("val_ppl")) r.val_ppl = number_from(j, "val_ppl", where);
  // Absent from records written before they were added.
  if (j.contains("time")) r.wall_time = number_from(j, "time", where);
  if (j.contains("ms_per_step")) r.ms_per_step = number_from(j, "ms_per_step", where);
  if (j.contains("mfu")) r.mfu = number_from(j, "mfu", where);
  if (j.contains("peak_memory_gib")) r.peak_memory = number_from(j, "peak_memory_gib", where) * double(1 << 30);
  return r;
}

std::vector<MetricsRecord> read_metrics(const std::string& path) {
  std::vector<MetricsRecord> out;
  std::ifstream in(path, std::ios::binary);
  if (!in) return out;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t pos = 0;
  for (int64_t line_no = 1; pos < text.size(); ++line_no) {
    const size_t end = text.find('\n', pos);
    if (end == std::string::npos) break;  // a line whose write was cut short
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    out.push_back(parse_metrics_json(line, str_cat(path, ":", line_no)));
  }
  return out;
}

MetricsWriter::MetricsWriter(const std::string& path, int64_t keep_up_to_step) : path_(path) {
  if (keep_up_to_step >= 0)
    for (MetricsRecord& r : read_metrics(path))
      if (r.step <= keep_up_to_step) records_.push_back(r);
  // Rewrite the kept records whole (through a temporary file), then append from there.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    SERPENT_CHECK(out, "cannot write ", tmp);
    for (const MetricsRecord& r : records_) out << metrics_json(r) << '\n';
    SERPENT_CHECK(out.flush(), "cannot write ", tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  SERPENT_CHECK(!ec, "cannot rename ", tmp, " to ", path, ": ", ec.message());
}

void MetricsWriter::write(const MetricsRecord& r) {
  std::ofstream out(path_, std::ios::binary | std::ios::app);
  out << metrics_json(r) << '\n';
  SERPENT_CHECK(out.flush(), "cannot append to ", path_);
  records_.push_back(r);
}

}  // namespace serpent
