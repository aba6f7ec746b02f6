// A folder of checkpoints (DIR/step_<8+ digits>.h5): naming, listing newest first, resuming from
// the newest intact one, and keeping the last K.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <regex>

#include "io/checkpoint.h"

namespace fs = std::filesystem;

namespace serpent {

std::string checkpoint_path(const std::string& dir, int64_t step) {
  SERPENT_CHECK(step >= 0, "checkpoint_path: negative step ", step);
  char name[40];
  std::snprintf(name, sizeof name, "step_%08lld.h5", static_cast<long long>(step));
  return (fs::path(dir) / name).string();
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  static const std::regex pattern(R"(step_(\d{1,18})\.h5)");
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file(ec) && std::regex_match(name, m, pattern))
      found.emplace_back(std::stoll(m[1].str()), entry.path().string());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

std::optional<std::pair<std::string, Checkpoint>> load_latest_checkpoint(const std::string& dir,
                                                                         CheckpointParts parts) {
  for (const std::string& path : list_checkpoints(dir)) {
    try {
      // Read everything, so that "valid" means the whole file, whatever the caller keeps.
      Checkpoint c = load_checkpoint(path, CheckpointParts::all);
      if (parts == CheckpointParts::model_only) {
        c.optim.clear();
        c.optim_step = 0;
        c.train = TrainState{};
      }
      return std::pair{path, std::move(c)};
    } catch (const Error& e) {
      std::fprintf(stderr, "serpent: warning: skipping checkpoint %s: %s; falling back to an earlier one\n",
                   path.c_str(), e.what());
    }
  }
  return std::nullopt;
}

std::optional<std::string> latest_valid_checkpoint(const std::string& dir) {
  for (const std::string& path : list_checkpoints(dir)) {
    try {
      verify_checkpoint(path);
      return path;
    } catch (const Error& e) {
      std::fprintf(stderr, "serpent: warning: skipping checkpoint %s: %s; falling back to an earlier one\n",
                   path.c_str(), e.what());
    }
  }
  return std::nullopt;
}

void prune_checkpoints(const std::string& dir, int64_t keep_last) {
  SERPENT_CHECK(keep_last >= 1, "prune_checkpoints: keep_last must be at least 1, got ", keep_last);
  const std::vector<std::string> all = list_checkpoints(dir);
  std::error_code ec;
  for (size_t i = size_t(keep_last); i < all.size(); ++i) {
    fs::remove(all[i], ec);
    SERPENT_CHECK(!ec, "prune_checkpoints: cannot delete ", all[i], ": ", ec.message());
  }
  static const std::regex temp(R"(\.step_\d{1,18}\.h5\.tmp\.\d+)");
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (std::regex_match(entry.path().filename().string(), temp)) fs::remove(entry.path(), ec);
}

}  // namespace serpent
