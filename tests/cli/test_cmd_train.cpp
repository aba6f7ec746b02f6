// `serpent train` as a user runs it. On one process: user mistakes end it with one line and exit
// code 1, an exploding loss exits non-zero after the skipped steps, SIGTERM or SIGHUP makes it
// checkpoint and exit 0. Data parallel (docs/DISTRIBUTED.md): on 1, 2 and 3 cpu ranks (--nproc, which runs
// mpirun; torchrun-style processes without mpirun), ZeRO-1, resuming on other rank counts, a stop
// signal to one rank, a rank that dies, the errors of --nproc, and on a GPU the NCCL path at world
// size 1. The data-parallel runs train the tiny model 20 steps of 6 micro-batches each, so one
// rank accumulates 6 micro-batches a step, two ranks 3 each and three ranks 2 each: the same
// global batch.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "data/shard.h"
#include "dist/comm.h"
#include "io/checkpoint.h"
#include "tests/helpers.h"
#include "train/metrics.h"
#include "train/signals.h"

namespace fs = std::filesystem;
using namespace serpent;
using namespace serpent::testing;

namespace {

// ---- one process ----

class TrainCommand : public ::testing::Test {
 protected:
  void SetUp() override { write_text_dataset(data_); }
  std::string write_config(const std::string& name, const std::string& extra) {
    const std::string path = dir_ / (name + ".yaml");
    std::ofstream(path) << "model: {d_model: 16, n_layer: 2, vocab_size: 257, d_state: 4}\n"
                        << "data: {path: " << data_ << ", seq_len: 32, micro_batch_size: 2, global_batch_tokens: 64}\n"
                        << "log: {runs_dir: " << runs_ << "}\n"
                        << extra;
    return path;
  }
  TempDir dir_;
  std::string data_ = dir_ / "data", runs_ = dir_ / "runs";
};

TEST_F(TrainCommand, UserMistakesGiveOneLineAndExitCode1) {
  expect_one_line_error(run_serpent({"train", write_config("typo", "optim: {warmup: 10}\n")}, dir_.path()), "train",
                        {"unknown key 'optim.warmup'", "did you mean 'optim.warmup_steps'"});
  const std::string ok = write_config("ok", "train: {name: ok, max_steps: 2}\noptim: {warmup_steps: 0}\n");
  expect_one_line_error(run_serpent({"train", ok, "--set", "optim.lr=fast"}, dir_.path()), "train",
                        {"optim.lr expects a number, got 'fast'"});
  expect_one_line_error(run_serpent({"train", ok, "--set", "data.path=" + (dir_ / "nowhere")}, dir_.path()), "train",
                        {"data.path '" + (dir_ / "nowhere") + "' does not exist", "serpent prepare"});
  expect_one_line_error(run_serpent({"train", dir_ / "missing.yaml"}, dir_.path()), "train",
                        {"cannot read config file"});
  expect_one_line_error(run_serpent({"train", ok, "--set", "data.seq_len=48"}, dir_.path()), "train",
                        {"data.global_batch_tokens 64 must be a multiple of"});
  expect_one_line_error(run_serpent({"train", ok, "--resume", dir_ / "none.h5"}, dir_.path()), "train",
                        {"no such file"});
}

TEST_F(TrainCommand, ATokenOutsideTheVocabularyStopsTheRunBeforeItsFirstStep) {
  // One bad id deep in the training data: found when the run starts, not when its window is drawn.
  ShardReader good(data_ + "/train_000000.bin");
  std::vector<int32_t> ids(size_t(good.size()));
  for (int64_t i = 0; i < good.size(); ++i) ids[size_t(i)] = int32_t(good.at(i));
  ids[ids.size() - 7] = 1000;
  write_shard(data_ + "/train_000000.bin", ids.data(), ids.size(), TokenWidth::u16);
  const std::string cfg = write_config("bad", "train: {name: bad, max_steps: 5}\noptim: {warmup_steps: 0}\n");
  for (const char* resume : {"", "auto"}) {
    std::vector<std::string> args = {"train", cfg};
    if (*resume) args.insert(args.end(), {"--resume", resume});
    expect_one_line_error(run_serpent(args, dir_.path()), "train",
                          {"train_000000.bin holds token id 1000", "outside the model's vocabulary of 257"});
  }
  EXPECT_FALSE(fs::exists(runs_ + "/bad/metrics.jsonl"));
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

// Starts a run far too long to finish, sends `sig` once it has logged a few steps, and expects
// the clean stop: the step finished, a checkpoint written, exit code 0.
void expect_clean_stop(const std::string& cfg, const std::string& runs, const TempDir& dir, int sig,
                       const std::string& name) {
  const std::string metrics = runs + "/" + name + "/metrics.jsonl";
  const pid_t pid = spawn_serpent({"train", cfg}, dir / (name + ".out"), dir / (name + ".err"));
  ASSERT_GT(pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (read_metrics(metrics).size() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_GE(read_metrics(metrics).size(), 3u) << read_text_file(dir / (name + ".err"));
  ASSERT_EQ(kill(pid, sig), 0);
  EXPECT_EQ(wait_exit_code(pid), 0) << read_text_file(dir / (name + ".err"));

  const std::vector<std::string> ckpts = list_checkpoints(runs + "/" + name + "/checkpoints");
  ASSERT_EQ(ckpts.size(), 1u);
  const Checkpoint c = load_checkpoint(ckpts[0]);  // verifies every checksum
  EXPECT_GE(c.train.step, 3);
  EXPECT_EQ(ckpts[0], checkpoint_path(runs + "/" + name + "/checkpoints", c.train.step));
  EXPECT_EQ(c.optim_step, c.train.step);
  const std::string err = read_text_file(dir / (name + ".err"));
  EXPECT_NE(err.find(str_cat("received ", signal_name(sig), ": stopped after step ", c.train.step)), std::string::npos)
      << err;
}

TEST_F(TrainCommand, SigtermFinishesTheStepWritesACheckpointAndExitsZero) {
  expect_clean_stop(
      write_config("long", "train: {name: long, max_steps: 1000000, log_every: 1}\ncheckpoint: {every: 0}\n"), runs_,
      dir_, SIGTERM, "long");
}

TEST_F(TrainCommand, ARunFolderHoldsOneRunAndIsNeverTruncated) {
  const std::string cfg =
      write_config("one", "train: {name: one, max_steps: 1000000, log_every: 1}\ncheckpoint: {every: 0}\n");
  const std::string metrics = runs_ + "/one/metrics.jsonl";
  const pid_t pid = spawn_serpent({"train", cfg}, dir_ / "one.out", dir_ / "one.err");
  ASSERT_GT(pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (read_metrics(metrics).size() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_GE(read_metrics(metrics).size(), 2u) << read_text_file(dir_ / "one.err");
  // A second run of the same name while the first trains.
  expect_one_line_error(
      run_serpent({"train", cfg}, dir_.path()), "train",
      {"the run folder " + runs_ + "/one is in use by another serpent train (pid " + std::to_string(pid) + ")"});
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  ASSERT_EQ(wait_exit_code(pid), 0) << read_text_file(dir_ / "one.err");
  const std::string before = read_text_file(metrics), log_before = read_text_file(runs_ + "/one/train.log");
  // Another checkpoint.dir does not make it another run: the first run's files stay as they are.
  expect_one_line_error(
      run_serpent({"train", cfg, "--set", "checkpoint.dir=" + (dir_ / "elsewhere")}, dir_.path()), "train",
      {"the run folder " + runs_ + "/one already holds another run's metrics.jsonl", "--resume auto"});
  EXPECT_EQ(read_text_file(metrics), before);
  EXPECT_EQ(read_text_file(runs_ + "/one/train.log"), log_before);
  // The lock went with the process (no stale lock): the run resumes.
  const CliResult resumed = run_serpent({"train", cfg, "--resume", "auto", "--stop-after", "1"}, dir_.path());
  EXPECT_EQ(resumed.code, 0) << resumed.err;
}

TEST_F(TrainCommand, KilledAtRandomMomentsWithBackgroundSavesItResumesBitwise) {
  // A checkpoint every step, written in the background (checkpoint.async, the default): SIGKILL
  // lands during steps, snapshots and writes alike, 22 times as in the hardening report. However
  // often the run is killed, resuming gives bitwise the records of the run made in one go.
  const std::string extra =
      "train: {max_steps: 200, log_every: 1}\noptim: {warmup_steps: 5}\neval: {every: 10, batches: 2}\n"
      "checkpoint: {every: 1, keep_last: 2}\n";
  const std::string ref = write_config("ref", extra), crash = write_config("crash", extra);
  ASSERT_EQ(run_serpent({"train", ref, "--set", "train.name=ref"}, dir_.path()).code, 0);
  // Each attempt is killed once it has logged 1 to 4 more steps (plus up to 30 ms, to land inside
  // a step, a snapshot or a write), so every kill is mid-run whatever the machine's speed, and 22
  // of them leave the 200-step run unfinished.
  const std::string metrics = runs_ + "/crash/metrics.jsonl";
  auto logged = [&] { return std::filesystem::exists(metrics) ? lines_of(read_text_file(metrics)).size() : size_t(0); };
  std::mt19937 rng(7);
  int kills = 0;
  for (int attempt = 0; attempt < 22; ++attempt) {
    const size_t before = logged(), more = 1 + rng() % 4;
    const pid_t pid = spawn_serpent({"train", crash, "--set", "train.name=crash", "--resume", "auto"}, dir_ / "c.out",
                                    dir_ / "c.err");
    ASSERT_GT(pid, 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    int status = 0;
    bool exited = false;
    while (logged() < before + more && std::chrono::steady_clock::now() < deadline &&
           !(exited = ::waitpid(pid, &status, WNOHANG) == pid))
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_FALSE(exited) << "attempt " << attempt << " ended by itself: " << read_text_file(dir_ / "c.err");
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 30));
    ::kill(pid, SIGKILL);
    if (wait_exit_code(pid) == -1) ++kills;  // died of the signal (one that ended first exits 0)
  }
  const CliResult last = run_serpent({"train", crash, "--set", "train.name=crash", "--resume", "auto"}, dir_.path());
  ASSERT_EQ(last.code, 0) << last.err;
  EXPECT_EQ(kills, 22) << "every attempt should have been killed mid-run";
  const std::vector<MetricsRecord> a = read_metrics(runs_ + "/ref/metrics.jsonl");
  const std::vector<MetricsRecord> b = read_metrics(runs_ + "/crash/metrics.jsonl");
  ASSERT_EQ(a.size(), 200u);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].step, a[i].step);
    EXPECT_EQ(b[i].loss, a[i].loss) << "step " << a[i].step;
    EXPECT_EQ(b[i].grad_norm, a[i].grad_norm) << "step " << a[i].step;
    EXPECT_EQ(b[i].lr, a[i].lr);
    EXPECT_EQ(b[i].val_loss, a[i].val_loss) << "step " << a[i].step;
  }
  // The final weights too.
  const Checkpoint ca = load_checkpoint(checkpoint_path(runs_ + "/ref/checkpoints", 200));
  const Checkpoint cb = load_checkpoint(checkpoint_path(runs_ + "/crash/checkpoints", 200));
  expect_same_tensors(cb.model, ca.model);
  expect_same_tensors(cb.optim, ca.optim);
}

TEST_F(TrainCommand, SighupStopsAsCleanlyAsSigterm) {
  // A closed terminal or a dropped ssh session must not lose the run.
  expect_clean_stop(
      write_config("hup", "train: {name: hup, max_steps: 1000000, log_every: 1}\ncheckpoint: {every: 0}\n"), runs_,
      dir_, SIGHUP, "hup");
}

// ---- data parallel ----

class DistTrain : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_mpi()) GTEST_SKIP() << "this build has no MPI: cpu runs are single-process";
    dir_ = scratch_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    // Byte tokens of a chapter of Pride and Prejudice: 80% train, 20% val.
    write_text_dataset(dir_ + "/data");
    // 6 micro-batches of 2 x 16 tokens a step; 20 steps use 240 of the 570 train windows, so no
    // epoch ends; eval.batches 6 is the same 12 val windows on 1, 2 or 3 ranks.
    std::ofstream(dir_ + "/cfg.yaml") << "model: {d_model: 16, n_layer: 2, vocab_size: 257, d_state: 4}\n"
                                      << "data: {path: " << dir_
                                      << "/data, seq_len: 16, micro_batch_size: 2, global_batch_tokens: 192}\n"
                                      << "train: {max_steps: 20, log_every: 1}\n"
                                      << "optim: {lr: 0.01, min_lr: 0.001, warmup_steps: 2}\n"
                                      << "eval: {every: 10, batches: 6}\n"
                                      << "checkpoint: {every: 10, keep_last: 5}\n"
                                      << "dist: {timeout_s: 60}\n"
                                      << "log: {runs_dir: " << dir_ << "/runs}\n";
  }
  void TearDown() override {
    if (!HasFailure() && !dir_.empty()) fs::remove_all(dir_);
  }

  // serpent train CFG --set train.name=NAME EXTRA... with the given environment; fails the test
  // unless it exits 0.
  ProcessResult train(const std::string& name, std::vector<std::string> extra = {},
                      const std::map<std::string, std::string>& env = {{"OMP_NUM_THREADS", "1"}}) {
    std::vector<std::string> argv = {SERPENT_BINARY, "train", dir_ + "/cfg.yaml", "--set", "train.name=" + name};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ProcessResult r = run_process(argv, env, dir_ + "/" + name + ".out", 300);
    EXPECT_EQ(r.code, 0) << name << ":\n" << r.output;
    return r;
  }
  std::vector<MetricsRecord> metrics(const std::string& name) {
    return read_metrics(dir_ + "/runs/" + name + "/metrics.jsonl");
  }
  std::string checkpoint(const std::string& name, int step) {
    return checkpoint_path(dir_ + "/runs/" + name + "/checkpoints", step);
  }

  std::string dir_;
};

// The largest |a - b| / |b| over the losses of the steps both runs logged, and the steps compared.
std::pair<double, int> loss_difference(const std::vector<MetricsRecord>& a, const std::vector<MetricsRecord>& b,
                                       bool val = false) {
  double worst = 0;
  int compared = 0;
  for (const MetricsRecord& x : a)
    for (const MetricsRecord& y : b) {
      if (x.step != y.step) continue;
      if (val && !(x.val_loss && y.val_loss)) continue;
      const double p = val ? *x.val_loss : x.loss, q = val ? *y.val_loss : y.loss;
      worst = std::max(worst, std::abs(p - q) / std::abs(q));
      ++compared;
    }
  return {worst, compared};
}

bool same_losses(const std::vector<MetricsRecord>& a, const std::vector<MetricsRecord>& b) {
  auto [worst, compared] = loss_difference(a, b);
  return compared > 0 && worst == 0.0;
}

TEST_F(DistTrain, TwoAndThreeRanksMatchOneRankWithAccumulation) {
  const ProcessResult one = train("w1");
  const ProcessResult three = train("w3", {"--nproc", "3"});
  train("w2", {"--nproc", "2"});
  EXPECT_NE(three.output.find("x 3 ranks (mpi)"), std::string::npos) << three.output;
  EXPECT_NE(three.output.find("(2 x 2 x 16 x 3)"), std::string::npos) << three.output;  // accumulation 2 per rank
  EXPECT_NE(one.output.find("(6 x 2 x 16)"), std::string::npos) << one.output;
  for (const char* run : {"w2", "w3"}) {
    auto [worst, compared] = loss_difference(metrics(run), metrics("w1"));
    EXPECT_EQ(compared, 20) << run;
    EXPECT_LE(worst, 1e-6) << run;
    // Validation is split over the ranks and summed back.
    auto [val_worst, val_compared] = loss_difference(metrics(run), metrics("w1"), true);
    EXPECT_EQ(val_compared, 2) << run;
    EXPECT_LE(val_worst, 1e-6) << run;
  }
  // Only rank 0 reports: one progress line per step.
  size_t lines = 0;
  for (size_t at = three.output.find("step 20/20"); at != std::string::npos;
       at = three.output.find("step 20/20", at + 1))
    ++lines;
  EXPECT_EQ(lines, 1u) << three.output;
}

TEST_F(DistTrain, ZeroOneOnTwoRanksMatchesPlainDataParallel) {
  train("w2", {"--nproc", "2"});
  const ProcessResult z = train("z2", {"--nproc", "2", "--set", "dist.zero1=true"});
  EXPECT_NE(z.output.find("ZeRO-1"), std::string::npos) << z.output;
  auto [worst, compared] = loss_difference(metrics("z2"), metrics("w2"));
  EXPECT_EQ(compared, 20);
  EXPECT_LE(worst, 1e-6);
  // The checkpoint holds the full moments, not a shard: AdamW's names and shapes.
  const Checkpoint c = load_checkpoint(checkpoint("z2", 20));
  ASSERT_EQ(c.optim.size(), 2 * c.model.size());
  for (size_t i = 0; i < c.model.size(); ++i) {
    EXPECT_EQ(c.optim[2 * i].first, c.model[i].first + ".exp_avg");
    EXPECT_EQ(c.optim[2 * i].second.shape(), c.model[i].second.shape());
    EXPECT_GT(relative_error(c.optim[2 * i + 1].second, zeros(c.model[i].second.shape())), 0.5);
  }
  EXPECT_EQ(c.optim_step, 20);
}

TEST_F(DistTrain, SavedOnThreeRanksResumesOnThreeTwoAndOne) {
  // The uninterrupted run: 3 ranks with ZeRO-1, checkpoints at steps 10 and 20.
  train("a3", {"--nproc", "3", "--set", "dist.zero1=true"});
  const std::string at10 = checkpoint("a3", 10);
  // The same rank count continues bitwise; 2 and 1 ranks (ZeRO-1 or not) within fp32 rounding.
  train("b3", {"--nproc", "3", "--set", "dist.zero1=true", "--resume", at10});
  train("b2", {"--nproc", "2", "--resume", at10});
  train("b1", {"--resume", at10});
  EXPECT_TRUE(same_losses(metrics("b3"), metrics("a3")));
  for (const char* run : {"b2", "b1"}) {
    auto [worst, compared] = loss_difference(metrics(run), metrics("a3"));
    EXPECT_EQ(compared, 10) << run;
    EXPECT_LE(worst, 1e-6) << run;
  }
  // The same for a plain data-parallel run saved on 3 ranks and continued on 3.
  train("c3", {"--nproc", "3"});
  train("d3", {"--nproc", "3", "--resume", checkpoint("c3", 10)});
  EXPECT_TRUE(same_losses(metrics("d3"), metrics("c3")));
}

// Starts serpent train as `world` torchrun-style processes on 127.0.0.1 (no mpirun).
std::vector<Child> start_torchrun_style(const std::string& dir, const std::string& name, int world,
                                        const std::vector<std::string>& extra) {
  const std::string port = std::to_string(free_port_for_test());
  std::vector<Child> ranks;
  for (int r = 0; r < world; ++r) {
    std::vector<std::string> argv = {SERPENT_BINARY, "train", dir + "/cfg.yaml", "--set", "train.name=" + name};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ranks.push_back(start_process(argv,
                                  {{"RANK", std::to_string(r)},
                                   {"WORLD_SIZE", std::to_string(world)},
                                   {"LOCAL_RANK", std::to_string(r)},
                                   {"MASTER_ADDR", "127.0.0.1"},
                                   {"MASTER_PORT", port},
                                   {"OMP_NUM_THREADS", "1"}},
                                  dir + "/" + name + ".rank" + std::to_string(r)));
  }
  return ranks;
}

TEST_F(DistTrain, TorchrunStyleProcessesWithoutMpirun) {
  train("w1");
  std::vector<Child> ranks = start_torchrun_style(dir_, "t2", 2, {});
  for (int r = 0; r < 2; ++r)
    EXPECT_EQ(wait_process(ranks[size_t(r)], 300), 0) << read_text_file(ranks[size_t(r)].output_path);
  auto [worst, compared] = loss_difference(metrics("t2"), metrics("w1"));
  EXPECT_EQ(compared, 20);
  EXPECT_LE(worst, 1e-6);
  EXPECT_NE(read_text_file(ranks[0].output_path).find("x 2 ranks (mpi)"), std::string::npos);
  EXPECT_EQ(read_text_file(ranks[1].output_path).find("step "), std::string::npos) << "rank 1 prints no progress";
}

TEST_F(DistTrain, StopSignalToOneRankStopsAllAtTheSameStep) {
  std::vector<Child> ranks =
      start_torchrun_style(dir_, "s2", 2, {"--set", "train.max_steps=100000", "--set", "checkpoint.every=0"});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (metrics("s2").size() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_GE(metrics("s2").size(), 3u) << read_text_file(ranks[0].output_path);
  ::kill(ranks[1].pid, SIGTERM);
  for (int r = 0; r < 2; ++r)
    EXPECT_EQ(wait_process(ranks[size_t(r)], 120), 0) << read_text_file(ranks[size_t(r)].output_path);
  const std::vector<std::string> ckpts = list_checkpoints(dir_ + "/runs/s2/checkpoints");
  ASSERT_EQ(ckpts.size(), 1u);
  const Checkpoint c = load_checkpoint(ckpts[0]);
  EXPECT_NE(read_text_file(ranks[0].output_path)
                .find(str_cat("another rank received a stop signal: stopped after step ", c.train.step)),
            std::string::npos)
      << read_text_file(ranks[0].output_path);
}

TEST_F(DistTrain, KilledRankEndsTheOthersWithinTheTimeout) {
  // Torchrun-style processes: nothing but the timeout can tell rank 0 that rank 1 is gone.
  std::vector<Child> ranks = start_torchrun_style(
      dir_, "k2", 2, {"--set", "train.max_steps=100000", "--set", "checkpoint.every=0", "--set", "dist.timeout_s=3"});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (metrics("k2").size() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_GE(metrics("k2").size(), 3u) << read_text_file(ranks[0].output_path);
  ::kill(ranks[1].pid, SIGKILL);
  auto killed = std::chrono::steady_clock::now();
  const int code = wait_process(ranks[0], 60);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  wait_process(ranks[1], 10);
  const std::string out = read_text_file(ranks[0].output_path);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("serpent: error: rank 0:"), std::string::npos) << out;
  EXPECT_NE(out.find("did not complete within 3 s (dist.timeout_s): another rank has died"), std::string::npos) << out;
  EXPECT_LT(seconds, 15) << out;

  // Under mpirun (--nproc on the cpu) the launcher ends the job as soon as a rank dies.
  const Child job = start_process({SERPENT_BINARY, "train", dir_ + "/cfg.yaml", "--set", "train.name=m2", "--set",
                                   "train.max_steps=100000", "--set", "checkpoint.every=0", "--nproc", "2"},
                                  {{"OMP_NUM_THREADS", "1"}}, dir_ + "/m2.out");
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (metrics("m2").size() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_GE(metrics("m2").size(), 3u) << read_text_file(job.output_path);
  // The ranks are mpirun's children (the job's pid is mpirun's: serpent replaced itself).
  std::vector<pid_t> children = child_processes(job.pid);
  ASSERT_EQ(children.size(), 2u) << read_text_file(job.output_path);
  ::kill(children[1], SIGKILL);
  killed = std::chrono::steady_clock::now();
  const int job_code = wait_process(job, 60);
  const double job_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  const std::string job_out = read_text_file(job.output_path);
  EXPECT_NE(job_code, 0) << job_out;
  EXPECT_NE(job_code, -2) << "the job hung";
  EXPECT_NE(job_out.find("exited on signal 9"), std::string::npos) << job_out;
  EXPECT_LT(job_seconds, 15) << job_out;
}

TEST_F(DistTrain, NprocErrors) {
  auto run = [&](std::vector<std::string> extra, const std::map<std::string, std::string>& env = {}) {
    std::vector<std::string> argv = {SERPENT_BINARY, "train", dir_ + "/cfg.yaml"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_process(argv, env, dir_ + "/err.out", 60);
  };
  ProcessResult r = run({"--nproc", "0"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("--nproc expects a positive number"), std::string::npos) << r.output;
  r = run({"--nproc", "2"}, {{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("already started as rank 0 of 2"), std::string::npos) << r.output;
  // More GPU workers than GPUs.
  const int gpus = cuda_device_count(), n = std::max(2, gpus + 1);
  r = run({"--set", "train.device=cuda", "--nproc", std::to_string(n)});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find(
                str_cat("--nproc ", n, " runs one process per GPU, but this machine has ", gpus, " GPU(s) visible")),
            std::string::npos)
      << r.output;
  // A config error reaches every rank of a job; rank 0 alone reports it.
  std::vector<std::string> argv = mpirun_argv(2);
  for (const std::string& a : {std::string(SERPENT_BINARY), std::string("train"), dir_ + "/cfg.yaml",
                               std::string("--set"), std::string("optim.lr=fast")})
    argv.push_back(a);
  r = run_process(argv, {}, dir_ + "/err2.out", 60);
  EXPECT_NE(r.code, 0) << r.output;
  size_t reports = 0;
  for (size_t at = r.output.find("optim.lr expects a number"); at != std::string::npos;
       at = r.output.find("optim.lr expects a number", at + 1))
    ++reports;
  EXPECT_EQ(reports, 1u) << r.output;
}

class DistTrainCuda : public NcclTest {};

TEST_F(DistTrainCuda, NcclAtWorldSizeOneMatchesTheLocalPath) {
  const std::string dir = scratch_dir("nccl1");
  const std::string text = read_text_file(data_path("pride_and_prejudice_ch1.txt"));
  std::vector<int32_t> ids(text.begin(), text.end());
  for (int32_t& id : ids) id &= 0xff;
  fs::create_directories(dir + "/data");
  write_shard(dir + "/data/train_000000.bin", ids.data(), ids.size(), TokenWidth::u16);
  std::ofstream(dir + "/cfg.yaml") << "model: {d_model: 64, n_layer: 2, vocab_size: 257}\n"
                                   << "data: {path: " << dir
                                   << "/data, seq_len: 64, micro_batch_size: 4, global_batch_tokens: 512}\n"
                                   << "train: {max_steps: 20, log_every: 1, device: cuda}\n"
                                   << "optim: {lr: 0.01, warmup_steps: 2}\n"
                                   << "log: {runs_dir: " << dir << "/runs}\n";
  std::map<std::string, std::vector<MetricsRecord>> runs;
  for (const char* backend : {"local", "nccl"}) {
    const ProcessResult r =
        run_process({SERPENT_BINARY, "train", dir + "/cfg.yaml", "--set", str_cat("train.name=", backend), "--set",
                     str_cat("dist.backend=", backend)},
                    {{"MASTER_PORT", std::to_string(free_port_for_test())}}, dir + "/" + backend + ".out", 300);
    ASSERT_EQ(r.code, 0) << r.output;
    runs[backend] = read_metrics(dir + "/runs/" + backend + "/metrics.jsonl");
  }
  ASSERT_EQ(runs["nccl"].size(), 20u);
  EXPECT_TRUE(same_losses(runs["nccl"], runs["local"]));
  fs::remove_all(dir);
}

}  // namespace
