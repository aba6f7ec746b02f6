// serpent inspect: a summary of a checkpoint (config, step, tensors and their shapes, parameter
// count), of a token shard, or of a prepared dataset with every shard checked against its
// manifest (docs/DATA.md, "What is checked").
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/args.h"
#include "data/sha256.h"
#include "data/shard.h"
#include "io/checkpoint.h"
#include "layers/mamba_config_yaml.h"

namespace fs = std::filesystem;

namespace serpent {

namespace {

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(n);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

bool is_shard_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  int32_t header[2] = {};
  in.read(reinterpret_cast<char*>(header), sizeof header);
  return in.gcount() == sizeof header && (header[0] == 20240520 || header[0] == 20240801);
}

// One shard: its format, token count and id range (read in full), against the manifest's count.
void inspect_shard(const std::string& path) {
  const ShardReader r(path);  // the header and the file size agree, or this throws
  int64_t lo = r.size() ? r.at(0) : 0, hi = lo;
  for (int64_t i = 0; i < r.size(); ++i) lo = std::min(lo, r.at(i)), hi = std::max(hi, r.at(i));
  std::printf("shard %s: llm.c token shard, %s tokens (%s), %s\n", path.c_str(), with_commas(r.size()).c_str(),
              r.width() == TokenWidth::u16 ? "uint16, magic 20240520 version 1" : "uint32, magic 20240801 version 7",
              human_bytes(fs::file_size(path)).c_str());
  if (r.size() > 0) std::printf("token ids: %lld to %lld\n", (long long)lo, (long long)hi);
}

// A prepared dataset: the manifest, then every shard against it; with verify also each shard's
// sha256. Every problem is listed before the command fails.
void inspect_dataset(const std::string& dir, bool verify) {
  const std::string mpath = (fs::path(dir) / "manifest.json").string();
  std::error_code ec;
  if (!fs::exists(mpath, ec)) {
    std::printf("dataset %s: no manifest.json (shards made by another tool)\n", dir.c_str());
    for (const char* split : {"train", "val"}) {
      try {
        for (const std::string& p : find_shards(dir, split)) inspect_shard(p);
      } catch (const Error& e) {
        if (std::string(split) == "train") throw;
      }
    }
    return;
  }
  nlohmann::json m;
  try {
    std::ifstream in(mpath);
    m = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(mpath, " is not valid JSON (", e.what(), ")");
  }
  const auto& tok = m.value("tokenizer", nlohmann::json::object());
  std::printf("dataset %s: %s version %s\n", dir.c_str(), m.value("format", std::string("?")).c_str(),
              m.contains("version") ? m["version"].dump().c_str() : "?");
  std::printf("tokenizer: %s (vocabulary %s, end-of-text %s)\n", tok.value("name", std::string("?")).c_str(),
              tok.contains("vocab_size") ? tok["vocab_size"].dump().c_str() : "?",
              tok.contains("eot_id") ? tok["eot_id"].dump().c_str() : "?");
  if (m.contains("tokens") && m.contains("documents"))
    std::printf("train: %s tokens in %s documents; val: %s tokens in %s documents\n",
                m["tokens"].value("train", nlohmann::json(0)).dump().c_str(),
                m["documents"].value("train", nlohmann::json(0)).dump().c_str(),
                m["tokens"].value("val", nlohmann::json(0)).dump().c_str(),
                m["documents"].value("val", nlohmann::json(0)).dump().c_str());
  int problems = 0;
  size_t count = 0;
  for (const auto& s : m.value("shards", nlohmann::json::array())) {
    ++count;
    const std::string file = s.value("file", std::string()), path = (fs::path(dir) / file).string();
    std::string status;
    try {
      const ShardReader r(path);
      const int64_t want = s.value("tokens", int64_t(-1));
      if (r.size() != want)
        status = str_cat("PROBLEM: ", r.size(), " tokens, the manifest lists ", want);
      else if (verify && sha256_file(path) != s.value("sha256", std::string()))
        status = "PROBLEM: its sha256 differs from the manifest's";
      else
        status = verify ? "ok (size and sha256)" : "ok (size)";
    } catch (const Error& e) {
      status = std::string("PROBLEM: ") + e.what();
    }
    problems += status.rfind("PROBLEM", 0) == 0;
    std::printf("  %-22s %-5s %12s tokens  %s\n", file.c_str(), s.value("split", std::string("?")).c_str(),
                s.contains("tokens") ? s["tokens"].dump().c_str() : "?", printable(status).c_str());
  }
  SERPENT_CHECK(problems == 0, dir, ": ", problems, " of ", count, " shards do not match manifest.json (listed above)");
  std::printf("integrity: %s\n", verify ? "every shard's size and sha256 match the manifest"
                                        : "every shard's size matches the manifest (pass --verify for the sha256)");
}

std::string indent(const std::string& text, const std::string& pad) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) out += pad + line + "\n";
  return out;
}

}  // namespace

int cmd_inspect(const Args& args) {
  ArgParser p("inspect",
              "Summarizes a checkpoint (config, training step, tensors with their shapes, parameter count), a token "
              "shard (format, tokens, id range) or a prepared dataset (its manifest, and every shard checked "
              "against it).");
  p.positional("PATH", "a checkpoint (.h5), a token shard (.bin) or a dataset folder")
      .option("verify", "", "also read everything in full: every tensor's checksum, every shard's sha256");
  if (!p.parse(args)) return 0;
  const std::string path = p.get("PATH");
  std::error_code ec;
  SERPENT_CHECK(fs::exists(path, ec), path, ": no such file or folder");
  if (fs::is_directory(path, ec)) {
    bool dataset = fs::exists(fs::path(path) / "manifest.json", ec);
    for (const auto& e : fs::directory_iterator(path, ec))
      dataset = dataset || shard_of_split(e.path().filename().string(), "train");
    SERPENT_CHECK(dataset, path,
                  " is a folder, but neither a dataset nor a checkpoint; pass a checkpoint file such as ", path,
                  "/step_00001000.h5");
    inspect_dataset(path, p.flag("verify"));
    return 0;
  }
  if (is_shard_file(path)) {
    inspect_shard(path);
    return 0;
  }
  const CheckpointSummary s = read_checkpoint_summary(path);
  if (p.flag("verify")) verify_checkpoint(path);

  std::printf("checkpoint %s: %s, format version %lld\n", path.c_str(), human_bytes(s.file_bytes).c_str(),
              (long long)s.format_version);
  try {
    std::printf("model: %s\n", mamba_config_from_config_text(s.config_yaml, path).summary().c_str());
  } catch (const Error& e) {
    std::printf("model: config unreadable (%s)\n", e.what());
  }
  std::printf("parameters: %s in %zu tensors\n", with_commas(s.num_parameters).c_str(), s.model.size());
  const TrainState& t = s.train;
  std::printf("train: step %lld, tokens seen %s, rng seed %llu offset %llu, loader state for %zu rank(s)\n",
              (long long)t.step, with_commas(t.tokens_seen).c_str(), (unsigned long long)t.rng_seed,
              (unsigned long long)t.rng_offset, t.loader.size());
  for (const auto& [k, v] : t.ints) std::printf("  %s = %lld\n", k.c_str(), (long long)v);
  for (const auto& [k, v] : t.doubles) std::printf("  %s = %.17g\n", k.c_str(), v);
  for (const auto& [k, v] : t.int_arrays) std::printf("  %s = int64[%zu]\n", k.c_str(), v.size());
  for (const auto& [k, v] : t.double_arrays) std::printf("  %s = float64[%zu]\n", k.c_str(), v.size());
  if (s.optim.empty())
    std::printf("optimizer: none (model-only checkpoint)\n");
  else
    std::printf("optimizer: AdamW step %lld, %zu moment tensors\n", (long long)s.optim_step, s.optim.size());
  std::printf("integrity: %s\n", p.flag("verify") ? "every dataset read and its checksum verified"
                                                  : "manifest verified (pass --verify to check every tensor's bytes)");
  std::printf("config:\n%s", indent(s.config_yaml, "  ").c_str());
  std::printf("tensors:\n");
  for (const auto& [name, shape] : s.model)
    std::printf("  %-48s %-16s %s\n", name.c_str(), shape_str(shape).c_str(), with_commas(shape_numel(shape)).c_str());
  return 0;
}

}  // namespace serpent
