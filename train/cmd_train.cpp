// serpent train: a run from a YAML config (train/trainer.h, docs/TRAINING.md).
#include "train/args.h"
#include "train/config.h"
#include "train/signals.h"
#include "train/trainer.h"

namespace serpent {

int cmd_train(const Args& args) {
  ArgParser p("train",
              "Trains a Mamba language model as CONFIG.yaml describes (docs/CONFIG.md), writing progress to stderr and "
              "config.yaml, metrics.jsonl, train.log, loss.svg and checkpoints/ to <log.runs_dir>/<train.name>. "
              "SIGINT or SIGTERM stops after the current step with a checkpoint (exit code 0).");
  p.positional("CONFIG", "the YAML config (a preset from configs/ or your own)")
      .multi_option("set", "KEY=VALUE", "override a config value, e.g. --set optim.lr=1e-3 (repeatable)")
      .option("resume", "auto|PATH",
              "continue a run: auto = from the newest intact checkpoint of the run (a new run if there is none), or "
              "from the checkpoint file PATH")
      .option("stop-after", "N",
              "stop after N steps with a checkpoint, as an interruption would (the run can be resumed)");
  if (!p.parse(args)) return 0;
  const Config cfg = Config::load(p.get("CONFIG"), p.get_all("set"));
  TrainerOptions opts;
  if (p.has("resume")) {
    opts.resume = p.get("resume");
    SERPENT_CHECK(!opts.resume.empty(), "--resume expects auto or a checkpoint path");
  }
  StopOnSignals stop_on_signals;
  Trainer trainer(cfg, opts);
  trainer.run(p.has("stop-after") ? p.get_int("stop-after") : -1);
  return 0;
}

}  // namespace serpent
