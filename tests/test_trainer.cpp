// The trainer: a run interrupted and resumed reproduces the uninterrupted run bitwise (losses,
// gradient norms, validation losses, final weights and moments); resuming skips a damaged
// checkpoint with a warning; a non-finite loss skips updates and then stops the run with an error,
// keeping the last good checkpoint; SIGTERM makes `serpent train` checkpoint and exit 0; user
// mistakes end `serpent train` with one line and a non-zero exit code; metrics.jsonl and the
// loss curve.
#include <signal.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cli_helpers.h"
#include "data/shard.h"
#include "data_helpers.h"
#include "helpers.h"
#include "io/checkpoint.h"
#include "train/loss_plot.h"
#include "train/metrics.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace serpent;
using namespace serpent::testing;

namespace {

// A byte-level dataset from real English: the first 80% of a chapter of Pride and Prejudice as
// the train shard, the rest as the val shard.
void write_text_dataset(const std::string& dir) {
  const std::string text = read_text_file(data_path("pride_and_prejudice_ch1.txt"));
  std::vector<int32_t> ids(text.begin(), text.end());
  for (int32_t& id : ids) id &= 0xff;
  const size_t cut = ids.size() * 8 / 10;
  fs::create_directories(dir);
  write_shard(dir + "/train_000000.bin", ids.data(), cut, TokenWidth::u16);
  write_shard(dir + "/val_000000.bin", ids.data() + cut, ids.size() - cut, TokenWidth::u16);
}

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

void expect_same_tensors(const NamedTensors& a, const NamedTensors& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.to_vector<float>(), b[i].second.to_vector<float>()) << a[i].first;
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
  Trainer from_path(d, quiet(ckpt));
  EXPECT_EQ(from_path.completed_steps(), 2);
  // The config's model must be the checkpoint's.
  Config wider = tiny_config(data_, runs_, "e");
  wider.model.d_model = 24;
  expect_error([&] { Trainer t(wider, quiet(ckpt)); }, {ckpt, "d_model 16", "d_model 24"});
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

TEST_F(TrainerTest, RunFolderHoldsConfigMetricsLogAndLossCurve) {
  Config c = tiny_config(data_, runs_, "files");
  Trainer trainer(c, quiet("auto"));  // nothing to resume yet: a new run
  EXPECT_EQ(trainer.resumed_from(), "");
  EXPECT_EQ(trainer.grad_accum_steps(), 2);
  const TrainSummary s = trainer.run();
  const std::string run = c.run_dir();

  // The final checkpoint holds the whole state of the run.
  const Checkpoint ckpt = load_checkpoint(s.checkpoint);
  EXPECT_EQ(Config::parse(ckpt.config_yaml), c);
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

  EXPECT_EQ(Config::parse(read_text_file(run + "/config.yaml")), c);
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
  EXPECT_NE(log.find("tok/s | ETA"), std::string::npos) << log;
}

// ---- metrics.jsonl and the plot ----

TEST(Metrics, RecordsRoundTripExactlyAndACutLastLineIsDropped) {
  TempDir dir;
  MetricsRecord a;
  a.step = 7;
  a.loss = 2.0 / 3.0;
  a.lr = 3e-3 * std::cos(0.1);
  a.grad_norm = 1.0 / 7.0;
  a.tokens = 1 << 20;
  a.tokens_per_s = 1234.5;
  a.val_loss = std::log(3.0);
  a.val_ppl = 3.0;
  MetricsRecord skipped;
  skipped.step = 8;
  skipped.loss = skipped.grad_norm = NAN;
  skipped.skipped = 1;
  {
    MetricsWriter w(dir / "m.jsonl", -1);
    w.write(a);
    w.write(skipped);
  }
  std::ofstream(dir / "m.jsonl", std::ios::app) << "{\"step\": 9, \"lo";
  const std::vector<MetricsRecord> back = read_metrics(dir / "m.jsonl");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].loss, a.loss);
  EXPECT_EQ(back[0].lr, a.lr);
  EXPECT_EQ(back[0].grad_norm, a.grad_norm);
  EXPECT_EQ(*back[0].val_loss, *a.val_loss);
  EXPECT_TRUE(std::isnan(back[1].loss));
  EXPECT_EQ(back[1].skipped, 1);
  // A resumed writer keeps what came before its step.
  MetricsWriter resumed(dir / "m.jsonl", 7);
  EXPECT_EQ(read_metrics(dir / "m.jsonl").size(), 1u);
}

TEST(LossPlot, TicksAreRoundNumbersCoveringTheRange) {
  EXPECT_EQ(nice_ticks(0, 200), (std::vector<double>{0, 50, 100, 150, 200}));
  EXPECT_EQ(nice_ticks(0, 1000), (std::vector<double>{0, 200, 400, 600, 800, 1000}));
  EXPECT_EQ(nice_ticks(1.93, 5.61), (std::vector<double>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(nice_ticks(1.93, 2.61), (std::vector<double>{1.8, 2.0, 2.2, 2.4, 2.6, 2.8}));
  EXPECT_EQ(nice_ticks(0.0013, 0.0061), (std::vector<double>{0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007}));
  const std::vector<double> flat = nice_ticks(2, 2);
  EXPECT_LT(flat.front(), 2);
  EXPECT_GT(flat.back(), 2);
}

TEST(LossPlot, SvgHasBothCurvesAndAxisLabels) {
  std::vector<MetricsRecord> rs;
  for (int s = 1; s <= 5000; ++s) {
    MetricsRecord r;
    r.step = s;
    r.loss = 5.0 / std::sqrt(double(s));
    if (s % 1000 == 0) r.val_loss = r.loss + 0.1;
    rs.push_back(r);
  }
  const std::string svg = loss_curve_svg(rs, "t <1>");
  EXPECT_NE(svg.find("t &lt;1&gt;"), std::string::npos);
  EXPECT_NE(svg.find(">5000<"), std::string::npos);  // an x tick at the last step
  EXPECT_NE(svg.find(">step<"), std::string::npos);
  size_t circles = 0;
  for (size_t p = svg.find("<circle"); p != std::string::npos; p = svg.find("<circle", p + 1)) ++circles;
  EXPECT_EQ(circles, 5u);
  // 5000 training points are thinned to at most 2000 in the polyline.
  const size_t start = svg.find("<polyline"), end = svg.find("/>", start);
  const std::string train = svg.substr(start, end - start);
  EXPECT_LE(std::count(train.begin(), train.end(), ','), 2000);
}

// ---- the command ----

class TrainCommand : public TrainerTest {
 protected:
  std::string write_config(const std::string& name, const std::string& extra) {
    const std::string path = dir_ / (name + ".yaml");
    std::ofstream(path) << "model: {d_model: 16, n_layer: 2, vocab_size: 257, d_state: 4}\n"
                        << "data: {path: " << data_ << ", seq_len: 32, micro_batch_size: 2, global_batch_tokens: 64}\n"
                        << "log: {runs_dir: " << runs_ << "}\n"
                        << extra;
    return path;
  }
  // The command failed with exactly one line on stderr that contains every part.
  void expect_one_line_error(const CliResult& r, const std::vector<std::string>& parts) {
    EXPECT_EQ(r.code, 1);
    const std::vector<std::string> lines = lines_of(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0].rfind("serpent train: error: ", 0), 0u) << lines[0];
    for (const std::string& p : parts) EXPECT_NE(lines[0].find(p), std::string::npos) << lines[0];
  }
};

TEST_F(TrainCommand, UserMistakesGiveOneLineAndExitCode1) {
  expect_one_line_error(run_serpent({"train", write_config("typo", "optim: {warmup: 10}\n")}, dir_.path()),
                        {"unknown key 'optim.warmup'", "did you mean 'optim.warmup_steps'"});
  const std::string ok = write_config("ok", "train: {name: ok, max_steps: 2}\noptim: {warmup_steps: 0}\n");
  expect_one_line_error(run_serpent({"train", ok, "--set", "optim.lr=fast"}, dir_.path()),
                        {"optim.lr expects a number, got 'fast'"});
  expect_one_line_error(run_serpent({"train", ok, "--set", "data.path=" + (dir_ / "nowhere")}, dir_.path()),
                        {"data.path '" + (dir_ / "nowhere") + "' does not exist", "serpent prepare"});
  expect_one_line_error(run_serpent({"train", dir_ / "missing.yaml"}, dir_.path()), {"cannot read config file"});
  expect_one_line_error(run_serpent({"train", ok, "--set", "data.seq_len=48"}, dir_.path()),
                        {"data.global_batch_tokens 64 must be a multiple of"});
  expect_one_line_error(run_serpent({"train", ok, "--resume", dir_ / "none.h5"}, dir_.path()), {"no such file"});
}

TEST_F(TrainCommand, ExplodingLossExitsNonZeroAfterSkippedSteps) {
  const CliResult r =
      run_serpent({"train", write_config("boom",
                                         "train: {name: boom, max_steps: 50, max_nonfinite_steps: 2, log_every: 1}\n"
                                         "optim: {lr: 1.0e+6, min_lr: 0, warmup_steps: 0, schedule: constant}\n"
                                         "checkpoint: {every: 1}\n")},
                  dir_.path());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("warning: step 2: loss nan"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("serpent train: error: the loss or gradient was not finite for 2 steps in a row"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(list_checkpoints(runs_ + "/boom/checkpoints"),
            std::vector<std::string>{checkpoint_path(runs_ + "/boom/checkpoints", 1)});
}

TEST_F(TrainCommand, SigtermFinishesTheStepWritesACheckpointAndExitsZero) {
  // A run far too long to finish: it is stopped once it has logged a few steps.
  const std::string cfg =
      write_config("long", "train: {name: long, max_steps: 1000000, log_every: 1}\ncheckpoint: {every: 0}\n");
  const std::string metrics = runs_ + "/long/metrics.jsonl";
  const pid_t pid = spawn_serpent({"train", cfg}, dir_ / "long.out", dir_ / "long.err");
  ASSERT_GT(pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (read_metrics(metrics).size() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_GE(read_metrics(metrics).size(), 3u) << read_text_file(dir_ / "long.err");
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  EXPECT_EQ(wait_exit_code(pid), 0) << read_text_file(dir_ / "long.err");

  const std::vector<std::string> ckpts = list_checkpoints(runs_ + "/long/checkpoints");
  ASSERT_EQ(ckpts.size(), 1u);
  const Checkpoint c = load_checkpoint(ckpts[0]);  // verifies every checksum
  EXPECT_GE(c.train.step, 3);
  EXPECT_EQ(ckpts[0], checkpoint_path(runs_ + "/long/checkpoints", c.train.step));
  EXPECT_EQ(c.optim_step, c.train.step);
  const std::string err = read_text_file(dir_ / "long.err");
  EXPECT_NE(err.find(str_cat("received SIGTERM: stopped after step ", c.train.step)), std::string::npos) << err;
}

}  // namespace
