// serpent eval: validation loss and perplexity of a checkpoint over a whole validation split.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/args.h"
#include "core/storage.h"
#include "core/threads.h"
#include "data/shard.h"
#include "infer/evaluate.h"
#include "infer/inference.h"

namespace serpent {

namespace {

// An integer option, else the checkpoint config's value, else a fallback.
std::string fmt_bpb(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

int64_t int_setting(const ArgParser& p, const char* option, const CheckpointModel& m, const char* key,
                    int64_t fallback) {
  if (p.has(option)) {
    const int64_t v = p.get_int(option);
    SERPENT_CHECK(v >= 1, "--", option, " must be at least 1, got ", v);
    return v;
  }
  if (auto v = m.config_value("data", key)) {
    try {
      return std::stoll(*v);
    } catch (const std::exception&) {
      fail("the checkpoint's data.", key, " is '", *v, "', not an integer; pass --", option);
    }
  }
  return fallback;
}

}  // namespace

int cmd_eval(const Args& args) {
  ArgParser p("eval",
              "Validation loss of a checkpoint: the mean negative log-likelihood per token over every token of the "
              "validation split (each val shard cut into windows of the training context; the first token of a shard "
              "is never a target), and the perplexity exp(loss).");
  p.option("checkpoint", "PATH", "checkpoint (.h5) to evaluate")
      .required()
      .option("data", "DIR_OR_GLOB",
              "a prepared dataset folder (its val_*.bin shards) or a glob of shard files; default: the checkpoint "
              "config's data.path")
      .option("json", "", "print one JSON object {\"loss\", \"ppl\", \"tokens\"} instead of a sentence")
      .option("seq-len", "N", "window length; default: the checkpoint config's data.seq_len (else 2048)")
      .option("batch-size", "N", "windows per forward; default: the checkpoint config's data.micro_batch_size (else 8)")
      .option("device", "cpu|cuda|cuda:N", "where to run; default: the checkpoint config's train.device (else cpu)")
      .option("threads", "N", "cpu threads (0: OMP_NUM_THREADS, else the cores not busy)", "0");
  if (!p.parse(args)) return 0;
  const std::string threads = use_threads(p.get_int("threads"));
  const std::string path = p.get("checkpoint");

  const CheckpointModel m = load_checkpoint_model(path);
  std::string device_name = p.has("device") ? p.get("device") : m.config_value("train", "device").value_or("cpu");
  if (!p.has("device") && Device::parse(device_name).is_cuda() && cuda_device_count() == 0) {
    std::fprintf(stderr, "eval: the checkpoint was trained on %s, but no GPU is visible; evaluating on the cpu\n",
                 device_name.c_str());
    device_name = "cpu";
  }
  const Device device = Device::parse(device_name);
  m.model->to(device);

  std::string data;
  if (p.has("data")) {
    data = p.get("data");
  } else {
    auto v = m.config_value("data", "path");
    SERPENT_CHECK(v, "checkpoint ", path, " does not name its data (no data.path in its config); pass --data DIR");
    data = *v;
  }
  LoaderOptions lo;
  lo.seq_len = int_setting(p, "seq-len", m, "seq_len", 2048);
  lo.batch_size = int_setting(p, "batch-size", m, "micro_batch_size", 8);
  lo.prefetch = 0;
  lo.vocab_size = m.model->config().vocab_size;
  // --data names the shards to score (a folder's val shards, or the files a pattern matches); the
  // checkpoint's data.path is its training data, whose val split is scored.
  std::error_code ec;
  const bool given = p.has("data") && !std::filesystem::is_directory(data, ec);
  const std::vector<std::string> shards = find_shards(data, given ? "" : "val");
  // A window never needs to be longer than the longest shard (a document run is cut at a shard's
  // end), nor a batch to hold more windows than the split has: an oversized --seq-len or
  // --batch-size would only allocate padding.
  std::vector<int64_t> targets;  // per shard
  for (const std::string& s : shards) targets.push_back(std::max<int64_t>(ShardReader(s).size() - 1, 0));
  const int64_t longest = targets.empty() ? 0 : *std::max_element(targets.begin(), targets.end());
  if (longest >= 1 && lo.seq_len > longest) {
    std::fprintf(stderr, "eval: windows of %lld tokens are longer than the longest val shard; using %lld\n",
                 (long long)lo.seq_len, (long long)longest);
    lo.seq_len = longest;
  }
  int64_t windows = 0;
  for (int64_t t : targets) windows += (t + lo.seq_len - 1) / lo.seq_len;
  lo.batch_size = std::max<int64_t>(1, std::min(lo.batch_size, windows));
  ValLoader val(shards, lo);

  std::fprintf(stderr, "eval: %s on %lld val tokens of %s (windows of %lld, %lld per batch, %s)\n", path.c_str(),
               (long long)val.num_target_tokens(), data.c_str(), (long long)lo.seq_len, (long long)lo.batch_size,
               (device.is_cpu() ? device.str() + ", " + threads : device.str()).c_str());
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  const EvalResult r = evaluate(*m.model, val, 0, device, [&](int64_t done, int64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_report < std::chrono::seconds(10) || done == total) return;
    last_report = now;
    std::fprintf(stderr, "eval: batch %lld/%lld\n", (long long)done, (long long)total);
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Bits per byte, comparable across tokenizers, when the dataset counted the bytes of its val
  // text: nats per token x tokens per byte of the split / ln 2.
  std::optional<double> bpb;
  if (!given) {
    try {
      std::ifstream in(std::filesystem::path(data) / "manifest.json");
      if (in) {
        const nlohmann::json m = nlohmann::json::parse(in);
        const double bytes = m.at("bytes").at("val").get<double>(), tokens = m.at("tokens").at("val").get<double>();
        if (bytes > 0 && tokens > 0) bpb = r.loss * tokens / bytes / std::log(2.0);
      }
    } catch (const nlohmann::json::exception&) {
      // A manifest from before the byte counts: no bits per byte.
    }
  }
  if (p.flag("json")) {
    nlohmann::ordered_json j;
    j["loss"] = r.loss;
    j["ppl"] = r.ppl;
    j["tokens"] = r.tokens;
    if (bpb) j["bits_per_byte"] = *bpb;
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("val loss %.4f nats/token, perplexity %.3f%s, over %lld tokens\n", r.loss, r.ppl,
                bpb ? str_cat(", ", fmt_bpb(*bpb), " bits per byte").c_str() : "", (long long)r.tokens);
  }
  std::fprintf(stderr, "eval: %lld batches in %.1f s (%.0f tokens/s)\n", (long long)r.batches, seconds,
               double(r.tokens) / std::max(seconds, 1e-9));
  return 0;
}

}  // namespace serpent
