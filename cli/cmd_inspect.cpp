// serpent inspect: a summary of a checkpoint (config, step, tensors and their shapes, parameter
// count). Token shards and dataset folders are recognized and refused for now.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "cli/args.h"
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

// Refuses the data formats this command does not summarize yet, with a message saying what they are.
void refuse_non_checkpoints(const std::string& path) {
  std::error_code ec;
  SERPENT_CHECK(fs::exists(path, ec), path, ": no such file or folder");
  if (fs::is_directory(path, ec)) {
    static const std::regex shard(R"((train|val)_\d+\.bin)");
    bool dataset = fs::exists(fs::path(path) / "manifest.json", ec);
    for (const auto& e : fs::directory_iterator(path, ec))
      dataset = dataset || std::regex_match(e.path().filename().string(), shard);
    SERPENT_CHECK(!dataset, path,
                  " is a prepared dataset folder, not a checkpoint (inspect summarizes checkpoints "
                  "only for now)");
    fail(path, " is a folder, not a checkpoint; pass a checkpoint file such as ", path, "/step_00001000.h5");
  }
  std::ifstream in(path, std::ios::binary);
  int32_t header[3] = {};
  in.read(reinterpret_cast<char*>(header), sizeof header);
  const bool shard = in.gcount() == sizeof header &&
                     ((header[0] == 20240520 && header[1] == 1) || (header[0] == 20240801 && header[1] == 7));
  SERPENT_CHECK(!shard, path, " is a token shard (magic ", header[0], ", version ", header[1], ", ", header[2],
                " tokens), not a checkpoint (inspect summarizes checkpoints only for now)");
}

std::string indent(const std::string& text, const std::string& pad) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) out += pad + line + "\n";
  return out;
}

}  // namespace

int cmd_inspect(const Args& args) {
  ArgParser p("inspect", "Summarizes a checkpoint: config, training step, tensors with their shapes, parameter count.");
  p.positional("PATH", "checkpoint file (.h5)").option("verify", "", "also read every tensor and check its checksum");
  if (!p.parse(args)) return 0;
  const std::string path = p.get("PATH");
  refuse_non_checkpoints(path);
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
