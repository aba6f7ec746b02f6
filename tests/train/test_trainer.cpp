// The trainer (train/trainer.h): a run interrupted and resumed reproduces the uninterrupted run
// bitwise (losses, gradient norms, validation losses, final weights and moments); resuming skips a
// damaged checkpoint with a warning; an explicit resume path and a changed model are checked; a
// non-finite loss skips updates and then stops the run with an error, keeping the last good
// checkpoint; the run folder holds the config, metrics, log and loss curve. `serpent train` is in
// cli/test_cmd_train.cpp.
#include <cmath>
#include <ctime>
#include <filesystem>

#include "data/prepare.h"
#include "io/checkpoint.h"
#include "tests/helpers.h"
#include "train/metrics.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace serpent;
using namespace serpent::testing;

namespace {

// A model small enough that a step takes milliseconds; 2 micro-batches per step, so gradient
// accumulation is part of what must resume exactly.
Config tiny_config(const std::string& data, const std::string& runs, const std::string& name) {
  Config c;
  c.model.d_model = 16;
  c.model.n_layer = 2;
  c.model.vocab_size = 257;
  c.model.d_state = 4;
  c.data.path = data;
  c.data.seq_len = 32;
  c.data.micro_batch_size = 2;
  c.data.global_batch_tokens = 128;
  c.data.prefetch = 2;
  c.train.name = name;
  c.train.max_steps = 6;
  c.train.log_every = 2;
  c.optim.lr = 1e-2;
  c.optim.min_lr = 1e-3;
  c.optim.warmup_steps = 2;
  c.eval.every = 4;
  c.eval.batches = 2;
  c.checkpoint.every = 100;  // only at stops and at the end, unless a test asks for more
  c.checkpoint.keep_last = 3;
  c.log.runs_dir = runs;
  c.validate();
  return c;
}

TrainerOptions quiet(const std::string& resume = "") {
  TrainerOptions o;
  o.resume = resume;
  o.progress = false;
  return o;
}

std::vector<MetricsRecord> metrics_of(const Config& c) {
  return read_metrics(c.run_dir() + "/metrics.jsonl");
}

// Every logged value that depends on the computation (not the timing) must be identical.
void expect_same_records(const std::vector<MetricsRecord>& a, const std::vector<MetricsRecord>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE(str_cat("record ", i, " (step ", a[i].step, ")"));
    EXPECT_EQ(a[i].step, b[i].step);
    EXPECT_EQ(a[i].loss, b[i].loss);
    EXPECT_EQ(a[i].grad_norm, b[i].grad_norm);
    EXPECT_EQ(a[i].lr, b[i].lr);
    EXPECT_EQ(a[i].tokens, b[i].tokens);
    EXPECT_EQ(a[i].skipped, b[i].skipped);
    ASSERT_EQ(a[i].val_loss.has_value(), b[i].val_loss.has_value());
    if (a[i].val_loss) {
      EXPECT_EQ(*a[i].val_loss, *b[i].val_loss);
    }
  }
}

void expect_same_checkpoint(const std::string& pa, const std::string& pb) {
  const Checkpoint a = load_checkpoint(pa), b = load_checkpoint(pb);
  expect_same_tensors(a.model, b.model);
  expect_same_tensors(a.optim, b.optim);
  EXPECT_EQ(a.optim_step, b.optim_step);
  EXPECT_EQ(a.train, b.train);
}

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override { write_text_dataset(data_); }
  TempDir dir_;
  std::string data_ = dir_ / "data", runs_ = dir_ / "runs";
};

TEST_F(TrainerTest, ResumedRunReproducesTheUninterruptedRunBitwise) {
  // In one go.
  const Config a = tiny_config(data_, runs_, "a");
  const TrainSummary sa = Trainer(a, quiet()).run();
  EXPECT_EQ(sa.reason, StopReason::completed);
  EXPECT_EQ(sa.step, 6);
  ASSERT_TRUE(sa.val.has_value());

  // Stopped after 3 steps (inside a logging interval: steps 3 and 4 make one record), then
  // resumed from that checkpoint by a new Trainer.
  const Config b = tiny_config(data_, runs_, "b");
  {
    const TrainSummary first = Trainer(b, quiet()).run(3);
    EXPECT_EQ(first.reason, StopReason::stop_step);
    EXPECT_EQ(first.step, 3);
    EXPECT_EQ(first.checkpoint, checkpoint_path(b.checkpoint_dir(), 3));
  }
  Trainer resumed(b, quiet("auto"));
  EXPECT_EQ(resumed.resumed_from(), checkpoint_path(b.checkpoint_dir(), 3));
  EXPECT_EQ(resumed.completed_steps(), 3);
  const TrainSummary sb = resumed.run();
  EXPECT_EQ(sb.reason, StopReason::completed);

  const std::vector<MetricsRecord> ra = metrics_of(a), rb = metrics_of(b);
  ASSERT_EQ(ra.size(), 3u);  // steps 2, 4 (with validation), 6 (the end, with validation)
  EXPECT_EQ(ra[1].step, 4);
  EXPECT_TRUE(ra[1].val_loss.has_value());
  expect_same_records(ra, rb);
  EXPECT_EQ(sa.val->loss, sb.val->loss);
  expect_same_checkpoint(sa.checkpoint, sb.checkpoint);
  // The run learned something, so equal numbers are not equal by being trivial.
  EXPECT_LT(ra.back().loss, ra.front().loss);
}

TEST_F(TrainerTest, Bf16MomentsResumeBitwiseAndCanBeSwitchedOnAtResume) {
  Config a = tiny_config(data_, runs_, "a");
  a.optim.state_dtype = "bf16";
  const TrainSummary sa = Trainer(a, quiet()).run();
  Config b = tiny_config(data_, runs_, "b");
  b.optim.state_dtype = "bf16";
  Trainer(b, quiet()).run(3);
  const TrainSummary sb = Trainer(b, quiet("auto")).run();
  // The checkpoint keeps the bf16 moments exactly (in f32), so the resumed run is the same run.
  expect_same_records(metrics_of(a), metrics_of(b));
  expect_same_checkpoint(sa.checkpoint, sb.checkpoint);

  // The same run with f32 moments differs (the rounding is real) and may continue in bf16.
  const Config f = tiny_config(data_, runs_, "f");
  Trainer(f, quiet()).run(3);
  Config g = f;
  g.optim.state_dtype = "bf16";
  const TrainSummary sg = Trainer(g, quiet("auto")).run();
  EXPECT_EQ(sg.reason, StopReason::completed);
  const std::vector<MetricsRecord> ra = metrics_of(a), rf = metrics_of(f);
  EXPECT_EQ(ra.front().loss, rf.front().loss);  // the first step reads zero moments either way
  EXPECT_NE(ra.back().loss, rf.back().loss);
  EXPECT_LT(std::abs(ra.back().loss - rf.back().loss), 0.05 * ra.back().loss);
}

TEST_F(TrainerTest, RecomputeFullTrainsTheSameRun) {
  const Config a = tiny_config(data_, runs_, "a");
  const TrainSummary sa = Trainer(a, quiet()).run();
  Config r = tiny_config(data_, runs_, "r");
  r.train.recompute = "full";
  const TrainSummary sr = Trainer(r, quiet()).run();
  expect_same_records(metrics_of(a), metrics_of(r));
  expect_same_checkpoint(sa.checkpoint, sr.checkpoint);
}

TEST_F(TrainerTest, ResumeFallsBackPastADamagedCheckpoint) {
  const Config a = tiny_config(data_, runs_, "a");
  Trainer(a, quiet()).run();

  Config c = tiny_config(data_, runs_, "c");
  c.checkpoint.every = 1;
  Trainer(c, quiet()).run(4);
  const std::string newest = checkpoint_path(c.checkpoint_dir(), 4);
  ASSERT_EQ(list_checkpoints(c.checkpoint_dir()),
            (std::vector<std::string>{newest, checkpoint_path(c.checkpoint_dir(), 3),
                                      checkpoint_path(c.checkpoint_dir(), 2)}));
  fs::resize_file(newest, fs::file_size(newest) / 2);  // as if the machine died while copying it

  ::testing::internal::CaptureStderr();
  Trainer resumed(c, quiet("auto"));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("warning: skipping checkpoint " + newest), std::string::npos) << err;
  EXPECT_EQ(resumed.resumed_from(), checkpoint_path(c.checkpoint_dir(), 3));
  resumed.run();
  expect_same_records(metrics_of(a), metrics_of(c));
}

TEST_F(TrainerTest, ExplicitResumePathAndChangedModelAreChecked) {
  Config c = tiny_config(data_, runs_, "c");
  Trainer(c, quiet()).run(2);
  const std::string ckpt = checkpoint_path(c.checkpoint_dir(), 2);
  // A new run over existing checkpoints is refused rather than overwriting them.
  expect_error([&] { Trainer t(c, quiet()); }, {"already holds 1 checkpoint", "--resume auto"});
  // --resume PATH continues another run's checkpoint in this run's folder.
  Config d = tiny_config(data_, runs_, "d");
  {
    Trainer from_path(d, quiet(ckpt));
    EXPECT_EQ(from_path.completed_steps(), 2);
    // While it lives, it holds the run folder: a second trainer of the same run is refused.
    expect_error([&] { Trainer t(d, quiet(ckpt)); }, {"run folder " + d.run_dir() + " is in use", "pid"});
  }
  // The config's model must be the checkpoint's.
  Config wider = tiny_config(data_, runs_, "e");
  wider.model.d_model = 24;
  expect_error([&] { Trainer t(wider, quiet(ckpt)); }, {ckpt, "model.d_model: 16 vs 24"});
  // Every key that differs is named with both values, not only the shapes.
  Config eps = tiny_config(data_, runs_, "f");
  eps.model.norm_epsilon = 0.1;
  eps.model.conv_bias = false;
  expect_error([&] { Trainer t(eps, quiet(ckpt)); },
               {ckpt, "model.conv_bias: true vs false", "model.norm_epsilon: 1.0e-05 vs 0.1"});
  // dt_rank auto is the number it resolves to.
  Config rank = tiny_config(data_, runs_, "g");
  rank.model.dt_rank = rank.model.resolved_dt_rank();
  Trainer same_rank(rank, quiet(ckpt));
  EXPECT_EQ(same_rank.completed_steps(), 2);
  // A damaged file named explicitly is an error, not a fallback.
  fs::resize_file(ckpt, 100);
  expect_error([&] { Trainer t(d, quiet(ckpt)); }, {ckpt});
}

TEST_F(TrainerTest, NonFiniteLossSkipsUpdatesThenStopsKeepingTheLastGoodCheckpoint) {
  // A learning rate of 1e6 with weight decay multiplies the weights by -1e5 per update: after
  // the first update the activations overflow and the loss is NaN.
  Config c = tiny_config(data_, runs_, "blowup");
  c.optim.lr = 1e6;
  c.optim.min_lr = 0;
  c.optim.warmup_steps = 0;
  c.optim.schedule = "constant";
  c.train.max_steps = 20;
  c.train.max_nonfinite_steps = 3;
  c.train.log_every = 1;
  c.checkpoint.every = 1;
  ::testing::internal::CaptureStderr();
  Trainer t(c, quiet());
  expect_error([&] { t.run(); }, {"not finite for 3 steps in a row", "steps 2 to 4",
                                  "last good checkpoint is " + checkpoint_path(c.checkpoint_dir(), 1)});
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(t.completed_steps(), 4);
  // No checkpoint was written during the skipped steps; the good one verifies.
  EXPECT_EQ(list_checkpoints(c.checkpoint_dir()), std::vector<std::string>{checkpoint_path(c.checkpoint_dir(), 1)});
  verify_checkpoint(checkpoint_path(c.checkpoint_dir(), 1));
  const std::vector<MetricsRecord> m = metrics_of(c);
  ASSERT_EQ(m.size(), 4u);
  EXPECT_TRUE(std::isfinite(m[0].loss));
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_TRUE(std::isnan(m[i].loss));
    EXPECT_EQ(m[i].skipped, 1);
  }
  EXPECT_NE(read_text_file(c.run_dir() + "/train.log").find("error: the loss or gradient was not finite"),
            std::string::npos);
}

TEST_F(TrainerTest, DataTokenizerIsTheDatasets) {
  // A dataset prepared with GPT-2's tokenizer, under a copy of tokenizer.json at another path.
  fs::create_directories(dir_ / "tok");
  fs::copy_file(gpt2_json(), dir_ / "tok/tokenizer.json");
  PrepareOptions o;
  o.tokenizer = dir_ / "tok/tokenizer.json";
  o.inputs = {data_path("pride_and_prejudice_ch1.txt")};
  o.out = dir_ / "gpt2data";
  o.val_fraction = 0;
  o.progress = false;
  prepare_dataset(o);
  Config c = tiny_config(dir_ / "gpt2data", runs_, "tok");
  c.model.vocab_size = 50257;
  c.data.seq_len = 16;
  c.data.global_batch_tokens = 64;
  c.eval.every = 0;
  EXPECT_EQ(Trainer(c, quiet()).config().data.tokenizer, dir_ / "tok/tokenizer.json");
  c.train.name = "tok2";
  c.data.tokenizer = gpt2_json();  // the same file elsewhere: the same tokenizer
  EXPECT_EQ(Trainer(c, quiet()).config().data.tokenizer, gpt2_json());
  c.train.name = "tok3";
  c.data.tokenizer = "byte";
  expect_error([&] { Trainer t(c, quiet()); }, {"data.tokenizer is 'byte' but " + (dir_ / "gpt2data") +
                                                    " was prepared with '" + (dir_ / "tok/tokenizer.json") + "'",
                                                "leave data.tokenizer out"});
  c.data.tokenizer = neox_json();
  expect_error([&] { Trainer t(c, quiet()); }, {"data.tokenizer is '" + neox_json() + "'", "was prepared with"});
}

TEST_F(TrainerTest, RunFolderHoldsConfigMetricsLogAndLossCurve) {
  Config c = tiny_config(data_, runs_, "files");
  Trainer trainer(c, quiet("auto"));  // nothing to resume yet: a new run
  EXPECT_EQ(trainer.resumed_from(), "");
  EXPECT_EQ(trainer.grad_accum_steps(), 2);
  const TrainSummary s = trainer.run();
  const std::string run = c.run_dir();

  // The final checkpoint holds the whole state of the run, and the config as the run resolved it:
  // data.tokenizer, left empty, is the dataset's (byte: the dataset has no manifest).
  Config resolved = c;
  resolved.data.tokenizer = "byte";
  EXPECT_EQ(trainer.config(), resolved);
  const Checkpoint ckpt = load_checkpoint(s.checkpoint);
  EXPECT_EQ(Config::parse(ckpt.config_yaml), resolved);
  EXPECT_EQ(ckpt.train.step, 6);
  EXPECT_EQ(ckpt.train.tokens_seen, 6 * 128);
  EXPECT_EQ(ckpt.optim_step, 6);
  EXPECT_EQ(ckpt.train.rng_seed, uint64_t(c.train.seed));
  ASSERT_EQ(ckpt.train.loader.size(), 1u);
  // {seed, epoch, offset, seq_len, windows}: 6 steps x 2 micro-batches x 2 rows consumed.
  EXPECT_EQ(ckpt.train.loader[0][2], 24);
  EXPECT_EQ(ckpt.train.loader[0][3], 32);
  EXPECT_EQ(ckpt.model.size(), trainer.model().named_parameters().size());
  EXPECT_EQ(ckpt.optim.size(), 2 * ckpt.model.size());
  expect_same_tensors(ckpt.model, trainer.model().named_parameters());

  EXPECT_EQ(Config::parse(read_text_file(run + "/config.yaml")), resolved);
  const std::vector<MetricsRecord> m = metrics_of(c);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m.back().tokens, 6 * 128);
  // Validation perplexity is exp of the validation loss.
  ASSERT_TRUE(m.back().val_loss && m.back().val_ppl);
  EXPECT_DOUBLE_EQ(*m.back().val_ppl, std::exp(*m.back().val_loss));
  const std::string svg = read_text_file(run + "/loss.svg");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_NE(svg.find("val loss"), std::string::npos);
  const std::string log = read_text_file(run + "/train.log");
  EXPECT_NE(log.find("step 6/6 | loss "), std::string::npos) << log;
  EXPECT_NE(log.find(" tok/s | "), std::string::npos) << log;
  EXPECT_NE(log.find(" ms/step | ETA"), std::string::npos) << log;
  // Every record says when it was written, the time per step and the peak memory.
  const double now = double(std::time(nullptr));
  for (const MetricsRecord& r : m) {
    EXPECT_GT(r.wall_time, now - 600);
    EXPECT_LE(r.wall_time, now + 1);
    EXPECT_GT(r.ms_per_step, 0);
    ASSERT_TRUE(r.peak_memory.has_value());
    EXPECT_GT(*r.peak_memory, 1 << 20);
    EXPECT_FALSE(r.mfu.has_value()) << "MFU is a GPU figure";
  }
  EXPECT_GE(m[1].wall_time, m[0].wall_time);
}

}  // namespace
