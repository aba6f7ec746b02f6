// The training loop behind `serpent train` (docs/TRAINING.md, docs/DESIGN.md "The training loop").
//
// One optimizer step (Trainer::step) runs grad_accum_steps micro-batches of
// data.micro_batch_size x data.seq_len tokens, each loss scaled by 1 / grad_accum_steps so the
// accumulated gradient is that of the mean loss over data.global_batch_tokens; then the global
// gradient norm, clipping to train.grad_clip, and one AdamW update at the schedule's rate for
// the step (AdamW's no-decay groups: optim/adamw.h). A step whose loss or gradient norm is not
// finite leaves the parameters and moments untouched; train.max_nonfinite_steps of them in a row
// stop the run with an error, keeping the last checkpoint written before them.
//
// Trainer::run adds, at their intervals, a progress line on stderr and a record in
// metrics.jsonl (train.log_every), validation (eval.every, and at the end), checkpoints
// (checkpoint.every, and at the end; the last checkpoint.keep_last are kept) and the loss curve.
// It stops after the current step when SIGINT / SIGTERM arrives under a StopOnSignals guard
// (train/signals.h), writing a checkpoint first.
//
// A checkpoint holds everything the loop depends on: parameters, AdamW moments and update
// count, the step, tokens seen, the RNG state, the data loader's position, the non-finite
// streak and the partial sums of the current logging interval. Resuming from it therefore
// continues the run exactly: on the cpu, the losses of a run interrupted and resumed are bitwise
// those of the run made in one go.
//
// The run folder <log.runs_dir>/<train.name> holds config.yaml (the resolved config),
// metrics.jsonl (train/metrics.h), train.log (every line printed, with times), loss.svg and
// checkpoints/ (or checkpoint.dir).
//
// Data parallelism (docs/DISTRIBUTED.md). When a launcher started this process as one of several
// ranks (dist/dist_env.h), each rank reads its own share of every step's micro-batches
// (data/loader.h), runs grad_accum_steps = global batch / (micro-batch x ranks) of them, and the
// gradients are averaged over the ranks while backward runs (train/data_parallel.h); with
// dist.zero1 the AdamW moments are sharded. On GPUs rank i of a node uses cuda:i. The loss,
// validation and the stop request are summed over the ranks, so every rank takes the same
// decisions at the same step. Rank 0 alone reads checkpoints (every rank then takes its state),
// writes them (full, unsharded weights and moments: a run saved on N ranks resumes on M), and
// writes the run folder and the progress lines. One process is the same code with a world of one.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "data/loader.h"
#include "dist/dist_env.h"
#include "infer/evaluate.h"
#include "io/checkpoint.h"
#include "io/checkpoint_writer.h"
#include "layers/mamba.h"
#include "optim/schedule.h"
#include "train/config.h"
#include "train/data_parallel.h"
#include "train/loop_state.h"
#include "train/metrics.h"
#include "train/run_lock.h"
#include "train/tensorboard.h"

namespace serpent {

struct TrainerOptions {
  // "": a new run (refused when the checkpoint folder already holds checkpoints);
  // "auto": continue from the newest intact checkpoint of the checkpoint folder, skipping damaged
  //         ones with a warning (a new run when the folder holds none);
  // a path: continue from that checkpoint file.
  std::string resume;
  bool progress = true;  // print on stderr (train.log gets every line either way)
};

struct StepResult {
  double loss = 0;       // mean over the step's micro-batches
  double grad_norm = 0;  // global L2 norm of the accumulated gradient, before clipping
  double lr = 0;         // the rate of this step
  bool skipped = false;  // loss or gradient norm not finite: no update was applied
};

enum class StopReason { completed, stop_step, signal };

struct TrainSummary {
  StopReason reason = StopReason::completed;
  int64_t step = 0;               // steps completed
  std::string checkpoint;         // the newest checkpoint written ("" when none)
  std::optional<EvalResult> val;  // the validation at the end of a completed run, if the data has a val split
};

class Trainer {
 public:
  // Builds the model, optimizer and loaders for cfg (validated first) and, per opts.resume,
  // restores a checkpoint. Throws serpent::Error naming the key, folder or file at fault.
  explicit Trainer(const Config& cfg, const TrainerOptions& opts = {});
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Trains until the configured end of the run, a stop signal, or (stop_step >= 0) until
  // stop_step steps are complete, whichever comes first. Every stop writes a checkpoint (unless
  // one already exists for that step).
  TrainSummary run(int64_t stop_step = -1);

  // One optimizer step (see the top of this file).
  StepResult step();
  // A validation pass of eval.batches batches (all of the split when 0); nothing without a val
  // split.
  std::optional<EvalResult> validate();
  // Writes the checkpoint of the current step and prunes the folder to checkpoint.keep_last;
  // returns its path.
  std::string write_checkpoint();
  // Waits for a checkpoint being written in the background; its failure stops every rank.
  void finish_checkpoint();

  int64_t completed_steps() const { return loop_.step; }
  int64_t total_steps() const { return total_steps_; }
  int64_t grad_accum_steps() const { return accum_; }
  const Config& config() const { return cfg_; }
  const MambaLM& model() const { return *model_; }
  const std::string& resumed_from() const { return resumed_from_; }  // "" for a new run
  int rank() const { return dp_->rank(); }
  int world_size() const { return dp_->world_size(); }

 private:
  // Rank 0: restores the state saved in ckpt but the optimizer's (kept in pending_optim_ for
  // sync_from_rank0); notes for the user are appended to `notes`.
  void restore(const std::string& path, const Checkpoint& ckpt, std::vector<std::string>& notes);
  // Every rank takes rank 0's weights, optimizer state and loop state.
  void sync_from_rank0();
  // The loop state now (the generator's and the loader's included), and setting it.
  LoopState snapshot() const;
  void apply(const LoopState& s);
  TrainSummary run_steps(int64_t stop_step);
  void record(const StepResult& last, const std::optional<EvalResult>& val);
  void note(const std::string& line);      // stderr (when progress) and train.log
  void log_line(const std::string& line);  // train.log only, with the time
  void plot();

  Config cfg_;
  TrainerOptions opts_;
  DistEnv env_;
  Device device_;
  int64_t accum_ = 1, total_steps_ = 0;
  std::string run_dir_, ckpt_dir_;

  Generator gen_;
  std::unique_ptr<MambaLM> model_;
  std::unique_ptr<DataParallel> dp_;  // the communicator, gradient buckets and optimizer
  LRSchedule schedule_;
  std::unique_ptr<DataLoader> loader_;
  std::unique_ptr<ValLoader> val_;  // null when the data has no val split

  // Steps, tokens, the non-finite streak and the logging interval in progress; the generator's
  // and the loader's part of the state live in gen_ and loader_ (snapshot() collects them).
  LoopState loop_;

  std::string resumed_from_;
  std::string last_checkpoint_;
  int64_t last_checkpoint_step_ = -1;
  bool stop_requested_ = false;  // a stop signal reached some rank by the end of the last step
  // A resumed checkpoint's optimizer state, on rank 0, until sync_from_rank0 hands it out.
  NamedTensors pending_optim_;

  std::unique_ptr<RunFolderLock> lock_;       // rank 0, while the trainer lives
  std::unique_ptr<CheckpointWriter> writer_;  // rank 0 writes; at most one save in flight
  HostStaging staging_;                       // rank 0 on a GPU: the host buffer checkpoints copy into
  std::unique_ptr<MetricsWriter> metrics_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;  // with log.tensorboard
  std::FILE* log_ = nullptr;
  // Throughput of this session: seconds spent in step(), and where the last record left off.
  double train_seconds_ = 0, record_seconds_ = 0;
  double resume_seconds_ = 0;  // reading and loading the checkpoint resumed from (rank 0)
  int64_t session_steps_ = 0, record_tokens_ = 0;
};

}  // namespace serpent
