// serpent train: a run from a YAML config (train/trainer.h, docs/TRAINING.md), on one process or,
// with --nproc or an outside launcher, data-parallel on several (docs/DISTRIBUTED.md).
#include "cli/args.h"
#include "core/storage.h"
#include "dist/comm.h"
#include "dist/dist_env.h"
#include "dist/launch.h"
#include "train/config.h"
#include "train/signals.h"
#include "train/trainer.h"

namespace serpent {

namespace {

// The arguments a worker gets: this command's, without --nproc.
std::vector<std::string> worker_argv(const Args& args) {
  std::vector<std::string> out = {self_executable(), "train"};
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;
      continue;
    }
    if (args[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  return out;
}

}  // namespace

int cmd_train(const Args& args) {
  ArgParser p("train",
              "Trains a Mamba language model as CONFIG.yaml describes (docs/CONFIG.md), writing progress to stderr and "
              "config.yaml, metrics.jsonl, train.log, loss.svg and checkpoints/ to <log.runs_dir>/<train.name>. "
              "SIGINT or SIGTERM stops after the current step with a checkpoint (exit code 0). Data-parallel runs: "
              "--nproc, or start the ranks with torchrun-style variables, srun or mpirun (docs/DISTRIBUTED.md).");
  p.positional("CONFIG", "the YAML config (a preset from configs/ or your own)")
      .multi_option("set", "KEY=VALUE", "override a config value, e.g. --set optim.lr=1e-3 (repeatable)")
      .option("resume", "auto|PATH",
              "continue a run: auto = from the newest intact checkpoint of the run (a new run if there is none), or "
              "from the checkpoint file PATH")
      .option("nproc", "N",
              "train data-parallel on N processes of this machine: one per GPU (cuda:0 .. cuda:N-1) when "
              "train.device is a GPU, through mpirun on the cpu")
      .option("stop-after", "N",
              "stop after N steps with a checkpoint, as an interruption would (the run can be resumed)");
  if (!p.parse(args)) return 0;
  const DistEnv env = dist_env_from_process();
  Config cfg;
  try {
    cfg = Config::load(p.get("CONFIG"), p.get_all("set"));
  } catch (const Error&) {
    // Every rank reads the same file and arguments, so every rank has the same error: rank 0
    // reports it.
    if (env.rank != 0) return 1;
    throw;
  }
  TrainerOptions opts;
  if (p.has("resume")) {
    opts.resume = p.get("resume");
    SERPENT_CHECK(!opts.resume.empty(), "--resume expects auto or a checkpoint path");
  }
  if (p.has("nproc")) {
    const int64_t n = p.get_int("nproc");
    SERPENT_CHECK(n >= 1, "--nproc expects a positive number of processes, got ", n);
    SERPENT_CHECK(env.launcher == Launcher::none, "--nproc starts the workers itself, but this process was already ",
                  "started as ", env.describe(), "; leave out --nproc (or the launcher)");
    if (n > 1) {
      if (Device::parse(cfg.train.device).is_cuda()) {
        const int gpus = cuda_device_count();
        SERPENT_CHECK(n <= gpus, "--nproc ", n, " runs one process per GPU, but this machine has ", gpus,
                      " GPU(s) visible (train.device ", cfg.train.device, "); use --nproc ", gpus > 0 ? gpus : 1,
                      " or fewer");
        return run_local_workers(worker_argv(args), int(n));
      }
      exec_under_mpirun(worker_argv(args), int(n));
    }
  }
  StopOnSignals stop_on_signals;
  try {
    Trainer trainer(cfg, opts);
    trainer.run(p.has("stop-after") ? p.get_int("stop-after") : -1);
  } catch (const JobError&) {
    if (env.rank != 0) return 1;  // every rank has it; rank 0 reports it
    throw;
  }
  return 0;
}

}  // namespace serpent
