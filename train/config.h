// The training configuration: a YAML file with sections model, data, train, optim, eval,
// checkpoint, dist and log (every key, its default and its range are in docs/CONFIG.md), then
// `--set section.key=value` overrides. Parsing is driven by one table of keys (config.cpp, which
// takes the model section's keys from layers/mamba_config.h) and the shared codec of
// core/key_table.h, so an unknown key, a value of the wrong type or out of range is a
// serpent::Error of one line that names the key by its dotted path (and, when unknown, the
// nearest valid key). The resolved
// config dumps back to YAML that parses to the identical config; that text goes into the run
// folder and into every checkpoint.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "layers/mamba_config.h"
#include "optim/adamw.h"
#include "optim/schedule.h"

namespace serpent {

struct DataConfig {
  std::string path = "data/prepared";    // a folder made by `serpent prepare` (shards + manifest.json)
  std::string tokenizer;                 // "byte" or a tokenizer.json; "": the one the dataset was prepared with
  int64_t seq_len = 2048;                // tokens per training sequence
  int64_t micro_batch_size = 8;          // sequences per forward/backward on one device
  int64_t global_batch_tokens = 524288;  // tokens per optimizer step over all devices and micro-batches
  int64_t prefetch = 4;                  // batches the loader's background thread reads ahead (0: none)

  bool operator==(const DataConfig&) const = default;
};

struct TrainConfig {
  std::string name = "run";         // the run folder is <log.runs_dir>/<name>
  int64_t max_steps = 1000;         // optimizer steps; 0 when max_tokens decides
  int64_t max_tokens = 0;           // training tokens; 0 when max_steps decides
  int64_t seed = 1234;              // model init and data order
  std::string device = "cpu";       // cpu, cuda or cuda:N
  std::string dtype = "f32";        // f32, bf16 (mixed precision, CUDA) or f64 (CPU, for checks)
  double grad_clip = 1.0;           // max global gradient norm; 0 turns clipping off
  int64_t log_every = 10;           // steps between progress lines / metrics records
  int64_t max_nonfinite_steps = 5;  // consecutive skipped non-finite steps before the run stops
  std::string init_from;            // "": random init; else a checkpoint or HF folder to start from
  int64_t threads = 0;              // cpu threads; 0: OMP_NUM_THREADS, else the cores not busy
  std::string recompute = "none";   // none, or full: blocks keep their inputs only (autograd/checkpoint.h)

  bool operator==(const TrainConfig&) const = default;
};

struct OptimConfig {
  double lr = 3e-3;  // peak learning rate
  double min_lr = 1e-5;
  std::array<double, 2> betas = {0.9, 0.95};
  double eps = 1e-8;
  double weight_decay = 0.1;
  std::string schedule = "cosine";  // cosine, wsd or constant (optim/schedule.h)
  int64_t warmup_steps = 100;
  double decay_fraction = 0.2;      // wsd: share of the run spent in the 1-sqrt cooldown
  std::string state_dtype = "f32";  // AdamW moments: f32 (as the parameters) or bf16

  bool operator==(const OptimConfig&) const = default;
};

struct EvalConfig {
  int64_t every = 200;   // steps between validation passes (0: only at the end)
  int64_t batches = 20;  // validation micro-batches per pass (0: the whole split)

  bool operator==(const EvalConfig&) const = default;
};

struct CheckpointConfig {
  int64_t every = 500;    // steps between checkpoints (0: only at the end)
  int64_t keep_last = 3;  // checkpoints kept on disk, newest first
  std::string dir;        // empty: <run folder>/checkpoints
  bool async = true;      // write in a background thread from a host snapshot (io/checkpoint_writer.h)

  bool operator==(const CheckpointConfig&) const = default;
};

struct DistConfig {
  std::string backend = "auto";  // auto, local, mpi or nccl (dist/comm.h)
  bool zero1 = false;            // shard the AdamW moments over the ranks (optim/zero1.h)
  double bucket_mb = 25;         // gradient all-reduce bucket size (dist/grad_buckets.h)
  double timeout_s = 600;        // a collective or the job's setup waiting longer ends the run

  bool operator==(const DistConfig&) const = default;
};

struct LogConfig {
  std::string runs_dir = "runs";  // root of the run folders
  bool tensorboard = false;       // also write TensorBoard scalars into the run folder

  bool operator==(const LogConfig&) const = default;
};

struct Config {
  MambaConfig model;
  // Whether the file or a --set gave any model key: with train.init_from and no model key, the
  // model is the one the source holds.
  bool model_given = false;
  DataConfig data;
  TrainConfig train;
  OptimConfig optim;
  EvalConfig eval;
  CheckpointConfig checkpoint;
  DistConfig dist;
  LogConfig log;

  // Reads a YAML file, applies `overrides` ("a.b=v", in order) and validates. Errors name the
  // file (or the --set) and the key.
  static Config load(const std::string& path, const std::vector<std::string>& overrides = {});
  // Parses YAML text; `source` names it in errors. Not validated: call validate().
  static Config parse(const std::string& yaml_text, const std::string& source = "config");

  // One override "section.key=value"; the value is read with the key's type (a YAML flow list
  // for optim.betas). Not validated as a whole: call validate().
  void set(const std::string& assignment);
  void set(const std::string& key, const std::string& value);

  // Every key's range, then the combinations (min_lr <= lr, batch divisibility, one of
  // max_steps / max_tokens, warmup within the run, the model's own checks).
  void validate() const;

  // YAML with every key, parsing back to an identical Config.
  std::string to_yaml() const;

  // ---- derived values ----
  int64_t tokens_per_micro_batch() const { return data.micro_batch_size * data.seq_len; }
  // Micro-batches each of world_size ranks runs per optimizer step.
  int64_t grad_accum_steps(int64_t world_size = 1) const;
  // max_steps, or max_tokens rounded up to whole global batches.
  int64_t total_steps() const;
  std::string run_dir() const;         // <log.runs_dir>/<train.name>
  std::string checkpoint_dir() const;  // checkpoint.dir or <run_dir>/checkpoints
  ScheduleConfig schedule_config() const;
  AdamWConfig adamw_config() const;

  // The settings alone: whether the model keys were given is not part of what a config says.
  bool operator==(const Config& o) const {
    return model == o.model && data == o.data && train == o.train && optim == o.optim && eval == o.eval &&
           checkpoint == o.checkpoint && dist == o.dist && log == o.log;
  }
};

// Every key as its dotted path, in the order the YAML dump lists them.
const std::vector<std::string>& config_keys();

}  // namespace serpent
