// The memory a run needs, estimated before anything is allocated (train/memory_estimate.h), and
// `serpent train` refusing, under a memory limit, a run that cannot fit: one line with the
// estimate, what the cpu has free and the key that would make it fit, never an out-of-memory kill.
#include <fstream>

#include "layers/mamba.h"
#include "tests/helpers.h"
#include "train/memory_estimate.h"

using namespace serpent;
using namespace serpent::testing;

TEST(MemoryEstimate, ParameterCountIsTheModels) {
  MambaConfig untied_bias = odd_config();
  untied_bias.conv_bias = false;
  for (const MambaConfig& c : {small_config(), byte_config(), odd_config(), eval_model_config(), untied_bias}) {
    Generator gen(1);
    EXPECT_EQ(c.num_parameters(), MambaLM(c, gen).num_parameters()) << c.summary();
  }
  // The published size of mamba-130m, counted independently in tests/train/test_config.cpp.
  EXPECT_EQ(Config::load(source_path("configs/mamba-130m.yaml")).model.num_parameters(), 129135360);
}

TEST(MemoryEstimate, ScalesWithTheBatchAndShardsTheMoments) {
  Config c = Config::load(source_path("configs/mamba-130m.yaml"));
  c.train.dtype = "f32";
  c.train.device = "cpu";
  const MemoryEstimate one = estimate_training_memory(c, Device::cpu(), 1);
  EXPECT_EQ(one.weights, 4 * 129135360);
  EXPECT_EQ(one.gradients, one.weights);  // 16 micro-batches per step: accumulated
  {
    // One micro-batch per step on one local process: the gradients are made in backward only.
    Config single = c;
    single.data.global_batch_tokens = single.data.micro_batch_size * single.data.seq_len;
    EXPECT_EQ(estimate_training_memory(single, Device::cpu(), 1).gradients, 0);
    EXPECT_EQ(estimate_training_memory(single, Device::cpu(), 2).gradients, one.weights);  // buckets
    single.dist.backend = "nccl";
    EXPECT_EQ(estimate_training_memory(single, Device::cpu(), 1).gradients, one.weights);
  }
  EXPECT_EQ(one.optimizer, 2 * one.weights);
  c.data.micro_batch_size *= 2;
  c.data.global_batch_tokens *= 2;
  const MemoryEstimate two = estimate_training_memory(c, Device::cpu(), 1);
  EXPECT_EQ(two.activations, 2 * one.activations);
  EXPECT_EQ(two.weights, one.weights);
  c.dist.zero1 = true;
  EXPECT_EQ(estimate_training_memory(c, Device::cpu(), 4).optimizer, one.optimizer / 4);
  c.optim.state_dtype = "bf16";  // two bytes per moment element
  EXPECT_EQ(estimate_training_memory(c, Device::cpu(), 4).optimizer, one.optimizer / 8);
  // f32 training of mamba-130m on the cpu keeps about 0.75 MB per token: 31 kB per layer (what the
  // closures keep, counted by hand from layers/mamba.cpp: the residual and the norm output, x, z,
  // u and y, dt_low, B and C) times 24 layers.
  const double per_token = double(one.activations) / double(c.data.seq_len * c.data.micro_batch_size / 2);
  EXPECT_GT(per_token, 0.7e6);
  EXPECT_LT(per_token, 0.8e6);
}

namespace {

// `serpent train` under an address-space limit (the shell's ulimit -v, i.e. setrlimit RLIMIT_AS)
// of `limit_mb` on top of what the libraries map, on a byte dataset of one chapter.
ShellResult train_limited(const TempDir& dir, int limit_mb, const std::string& sets) {
  write_text_dataset(dir / "data");
  std::ofstream(dir / "c.yaml") << "model: {d_model: 16, n_layer: 2, vocab_size: 257, d_state: 4}\n"
                                << "data: {path: " << (dir / "data") << ", seq_len: 32, micro_batch_size: 2, "
                                << "global_batch_tokens: 64}\n"
                                << "train: {max_steps: 2}\noptim: {warmup_steps: 0}\n"
                                << "log: {runs_dir: " << (dir / "runs") << "}\n";
  return run_limited(limit_mb, std::string(SERPENT_BINARY) + " train " + (dir / "c.yaml") + " " + sets + " 2>&1");
}

}  // namespace

TEST(MemoryEstimate, TrainRefusesARunThatCannotFitAndTrainsOneThatCan) {
  TempDir dir;
  const ShellResult small = train_limited(dir, 1500, "--set train.name=small");
  EXPECT_EQ(small.code, 0) << small.output;
  EXPECT_NE(small.output.find("done: 2 steps"), std::string::npos) << small.output;

  // A micro-batch too large: the model fits, its activations do not (well over the limit, so that
  // what the process has mapped when it checks, which varies with its thread count, does not
  // decide the outcome).
  const ShellResult batch =
      train_limited(dir, 1500,
                    "--set train.name=batch --set model.d_model=768 --set model.n_layer=8 --set data.seq_len=2048 "
                    "--set data.micro_batch_size=4 --set data.global_batch_tokens=8192");
  EXPECT_EQ(batch.code, 1) << batch.output;
  EXPECT_EQ(lines_of(batch.output).size(), 1u) << batch.output;
  for (const char* part : {"serpent train: error: the run needs about", "but cpu has", "RLIMIT_AS",
                           "lower data.micro_batch_size to", "or set optim.state_dtype bf16"})
    EXPECT_NE(batch.output.find(part), std::string::npos) << part << " in " << batch.output;

  // A model too large for the limit whatever the batch.
  const ShellResult model =
      train_limited(dir, 1500, "--set train.name=model --set model.d_model=2048 --set model.n_layer=48");
  EXPECT_EQ(model.code, 1) << model.output;
  for (const char* part : {"the run needs about", "does not fit: use a smaller model"})
    EXPECT_NE(model.output.find(part), std::string::npos) << part << " in " << model.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "runs/model")) << "a refused run leaves no run folder";

  // A size far out of range is refused by the config before any estimate.
  const ShellResult layers = train_limited(dir, 1500, "--set train.name=layers --set model.n_layer=1000000000");
  EXPECT_EQ(layers.code, 1) << layers.output;
  EXPECT_NE(layers.output.find("model.n_layer must be in [1, 1024], got 1000000000"), std::string::npos)
      << layers.output;
}
