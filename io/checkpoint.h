// Checkpoints: one HDF5 file per save (docs/CHECKPOINTS.md), readable with h5py.
//
//   /model/<parameter name>            f32, Hugging Face names ("backbone.layers.0.mixer.A_log")
//   /optim/<parameter>.exp_avg         f32 AdamW moments (the group is absent in model-only files)
//   /optim/<parameter>.exp_avg_sq      f32
//   /optim/step                        i64 scalar: optimizer updates applied
//   /train/step, /train/tokens_seen    i64 scalars
//   /train/rng_seed, /train/rng_offset u64 scalars: the Generator state (core/rng.h)
//   /train/loader/rank_<r>             i64 arrays: the data-loader position of each rank
//   /train/<name>                      any other named i64 / f64 scalar or 1-D array of the trainer
//   attributes of /: format ("serpent-checkpoint"), format_version, config (the resolved YAML),
//                    manifest_crc32; every dataset carries its own crc32 attribute.
//
// Integrity: each dataset's crc32 covers its raw little-endian bytes; manifest_crc32 covers the
// list of every dataset's path, type, shape and crc32 plus the config and the format version, so a
// flipped byte, a truncated file, a dropped dataset or an edited attribute all fail to load with
// an error naming the file (and the tensor, where one is at fault).
//
// Saves are atomic: the file is written under a hidden temporary name in the same folder,
// flushed and fsynced, then renamed over the final name, so a crash never leaves a half-written
// checkpoint where a reader would take it for a complete one.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "layers/module.h"

namespace serpent {

constexpr int64_t kCheckpointFormatVersion = 1;

// The trainer's state besides the tensors. Scalars are written as 0-d datasets, arrays as 1-D.
struct TrainState {
  int64_t step = 0;         // training steps completed
  int64_t tokens_seen = 0;  // tokens consumed by those steps, all ranks together
  uint64_t rng_seed = 0;    // Generator{seed, offset} of the run
  uint64_t rng_offset = 0;
  std::vector<std::vector<int64_t>> loader;  // data-loader position, one array per rank
  // Anything else the trainer wants back on resume, by name (stored as /train/<name>). Names must
  // not contain '/' nor repeat one of the fields above or each other.
  std::map<std::string, int64_t> ints;
  std::map<std::string, double> doubles;
  std::map<std::string, std::vector<int64_t>> int_arrays;
  std::map<std::string, std::vector<double>> double_arrays;

  bool operator==(const TrainState&) const = default;
};

struct Checkpoint {
  std::string config_yaml;  // the full resolved config
  NamedTensors model;       // parameters by Hugging Face name; any dtype and device on save, f32 cpu on load
  NamedTensors optim;       // "<param>.exp_avg" / "<param>.exp_avg_sq" (AdamW::state()); empty: none
  int64_t optim_step = 0;   // AdamW::steps()
  TrainState train;

  bool has_optim() const { return !optim.empty(); }
};

// Writes ckpt to path atomically (see above). Throws serpent::Error naming the path on failure,
// leaving any previous file at path untouched.
void save_checkpoint(const std::string& path, const Checkpoint& ckpt);

enum class CheckpointParts { all, model_only };

// Reads a checkpoint, verifying the manifest and the checksum of every dataset it reads. With
// model_only, only /model is read (and checked); optim and train stay empty/default.
Checkpoint load_checkpoint(const std::string& path, CheckpointParts parts = CheckpointParts::all);

// Reads and checks every byte of the file; throws serpent::Error naming the file and the damage.
void verify_checkpoint(const std::string& path);

// What `serpent inspect` prints: metadata and shapes only (the manifest is checked, tensor data is
// not read).
struct CheckpointSummary {
  int64_t format_version = 0;
  std::string config_yaml;
  std::vector<std::pair<std::string, Shape>> model, optim;
  int64_t num_parameters = 0;
  int64_t optim_step = 0;
  TrainState train;  // scalars and arrays: small, so read in full
  uint64_t file_bytes = 0;
};
CheckpointSummary read_checkpoint_summary(const std::string& path);

// True when the file starts with the HDF5 signature and carries format = "serpent-checkpoint".
bool is_checkpoint_file(const std::string& path);

// ---- a folder of checkpoints: DIR/step_<8+ digits>.h5 ----

std::string checkpoint_path(const std::string& dir, int64_t step);
// Checkpoint files in dir, newest (highest step) first. A missing dir has none.
std::vector<std::string> list_checkpoints(const std::string& dir);
// The newest checkpoint in dir that verifies; damaged ones are skipped with a warning on stderr.
std::optional<std::string> latest_valid_checkpoint(const std::string& dir);
// Like latest_valid_checkpoint, but loads while checking (each file is read once): the path and
// its contents, or nothing when no checkpoint in dir is intact.
std::optional<std::pair<std::string, Checkpoint>> load_latest_checkpoint(const std::string& dir,
                                                                         CheckpointParts parts = CheckpointParts::all);
// Deletes all but the keep_last newest checkpoints of dir, and temporary files left by
// interrupted saves. Call from the one process that saves, after a save.
void prune_checkpoints(const std::string& dir, int64_t keep_last);

}  // namespace serpent
