// The YAML config (train/config.h): presets, --set overrides, one-line errors naming the key
// (with the nearest valid key when unknown), derived values, and the dump that parses back to the
// identical config.
#include <fstream>
#include <set>
#include <sstream>

#include "layers/mamba_config_yaml.h"
#include "tests/helpers.h"
#include "train/config.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

Config with(std::vector<std::string> overrides) {
  Config c;
  for (const auto& o : overrides) c.set(o);
  return c;
}

struct Published {
  const char* name;
  int64_t d_model, n_layer;
  double lr;
  int64_t micro_batch;
};

// The recipe of Gu & Dao 2023 (appendix E.2): 5x GPT-3's peak learning rate (3x at 2.8b).
const Published kPublished[] = {{"mamba-130m", 768, 24, 5 * 6e-4, 16},
                                {"mamba-370m", 1024, 48, 5 * 3e-4, 8},
                                {"mamba-790m", 1536, 48, 5 * 2.5e-4, 8},
                                {"mamba-1.4b", 2048, 48, 5 * 2e-4, 8},
                                {"mamba-2.8b", 2560, 64, 3 * 1.6e-4, 4}};

TEST(Config, MambaPresetsFollowThePublishedRecipe) {
  for (const Published& p : kPublished) {
    SCOPED_TRACE(p.name);
    Config c = Config::load(source_path(std::string("configs/") + p.name + ".yaml"));
    EXPECT_EQ(c.model.d_model, p.d_model);
    EXPECT_EQ(c.model.n_layer, p.n_layer);
    EXPECT_EQ(c.model.vocab_size, 50277);
    EXPECT_EQ(c.model.padded_vocab(), 50280);
    EXPECT_EQ(c.model.d_state, 16);
    EXPECT_EQ(c.model.d_conv, 4);
    EXPECT_EQ(c.model.expand, 2);
    EXPECT_EQ(c.model.resolved_dt_rank(), (p.d_model + 15) / 16);
    EXPECT_TRUE(c.model.rms_norm && c.model.residual_in_fp32 && c.model.tie_embeddings && !c.model.bias);
    EXPECT_NEAR(c.optim.lr, p.lr, 1e-15);
    EXPECT_EQ(c.optim.min_lr, 1e-5);
    EXPECT_EQ(c.optim.betas[0], 0.9);
    EXPECT_EQ(c.optim.betas[1], 0.95);
    EXPECT_EQ(c.optim.weight_decay, 0.1);
    EXPECT_EQ(c.optim.schedule, "cosine");
    EXPECT_GT(c.optim.warmup_steps, 0);
    EXPECT_EQ(c.train.grad_clip, 1.0);
    EXPECT_EQ(c.data.seq_len, 2048);
    EXPECT_EQ(c.data.global_batch_tokens, 512 * 1024);
    EXPECT_EQ(c.data.micro_batch_size, p.micro_batch);
    EXPECT_NE(c.data.tokenizer.find("gpt-neox-20b"), std::string::npos);
    EXPECT_EQ(c.train.name, p.name);
    EXPECT_EQ(c.grad_accum_steps(1), 512 * 1024 / (2048 * p.micro_batch));
    EXPECT_EQ(c.total_steps(), 572205);  // ceil(300e9 / 524288)
  }
}

TEST(Config, Mamba130mHasThePublishedParameterCount) {
  // Counted from the shapes of docs/DESIGN.md ("Parameters"): 129,135,360, the size of state-spaces/mamba-130m.
  Config c = Config::load(source_path("configs/mamba-130m.yaml"));
  const int64_t D = c.model.d_model, E = c.model.d_inner(), N = c.model.d_state, R = c.model.resolved_dt_rank(),
                W = c.model.d_conv;
  const int64_t layer = D + 2 * E * D + E * W + E + (R + 2 * N) * E + E * R + E + E * N + E + D * E;
  EXPECT_EQ(c.model.padded_vocab() * D + c.model.n_layer * layer + D, 129135360);
}

TEST(Config, TinyPresetIsASmallByteModel) {
  Config c = Config::load(source_path("configs/tiny.yaml"));
  EXPECT_EQ(c.data.tokenizer, "byte");
  EXPECT_EQ(c.model.vocab_size, 257);
  EXPECT_EQ(c.data.seq_len, 256);
  EXPECT_EQ(c.train.device, "cpu");
  Generator gen(0);
  MambaLM model(c.model, gen);
  // Small enough for the two-core quickstart (docs/CONFIG.md), large enough to learn English bytes.
  EXPECT_GE(model.num_parameters(), 300000);
  EXPECT_LE(model.num_parameters(), 1000000);
}

TEST(Config, DefaultsValidate) {
  EXPECT_NO_THROW(Config().validate());
}

TEST(Config, OverridesUseTheKeysType) {
  Config c = Config::load(source_path("configs/tiny.yaml"),
                          {"model.d_model=64", "optim.lr=1e-3", "model.conv_bias=false", "train.name=my run",
                           "optim.betas=[0.8, 0.99]", "model.dt_rank=3", "optim.schedule=wsd", "train.max_steps=2e3",
                           "train.device=cuda:1", "train.dtype=bf16", "model.d_model=96"});
  EXPECT_EQ(c.model.d_model, 96);  // the last override wins
  EXPECT_EQ(c.optim.lr, 1e-3);
  EXPECT_FALSE(c.model.conv_bias);
  EXPECT_EQ(c.train.name, "my run");
  EXPECT_EQ(c.optim.betas[0], 0.8);
  EXPECT_EQ(c.optim.betas[1], 0.99);
  EXPECT_EQ(c.model.dt_rank, 3);
  EXPECT_EQ(c.optim.schedule, "wsd");
  EXPECT_EQ(c.train.max_steps, 2000);
  EXPECT_EQ(c.train.device, "cuda:1");
  EXPECT_EQ(c.model.n_layer, 3);  // untouched keys keep the file's values
  c.set("model.dt_rank", "auto");
  EXPECT_EQ(c.model.dt_rank, 0);
  c.set("checkpoint.dir=");
  EXPECT_EQ(c.checkpoint.dir, "");
  c.set("data.path=a=b");  // the first '=' splits
  EXPECT_EQ(c.data.path, "a=b");
}

TEST(Config, UnknownKeyNamesTheNearest) {
  expect_one_line_error([] { Config::parse("optim:\n  lrr: 0.1\n", "x.yaml"); },
                        {"x.yaml", "unknown key 'optim.lrr'", "did you mean 'optim.lr'"});
  expect_one_line_error([] { Config::parse("model:\n  d_modle: 64\n", "x.yaml"); },
                        {"unknown key 'model.d_modle'", "'model.d_model'"});
  expect_one_line_error([] { Config::parse("optimizer:\n  lr: 0.1\n", "x.yaml"); },
                        {"unknown key 'optimizer'", "did you mean 'optim'"});
  expect_one_line_error([] { Config::parse("train:\n  lr: 0.1\n", "x.yaml"); },
                        {"unknown key 'train.lr'", "did you mean 'optim.lr'"});
  expect_one_line_error([] { with({"optim.warmup=10"}); },
                        {"--set optim.warmup=10", "unknown key 'optim.warmup'", "'optim.warmup_steps'"});
  expect_one_line_error([] { with({"data.seqlen=128"}); }, {"'data.seq_len'"});
  expect_one_line_error([] { with({"chekpoint.every=5"}); }, {"'checkpoint.every'"});
  expect_one_line_error([] { with({"lr=0.1"}); }, {"unknown key 'lr'", "'optim.lr'"});
  expect_one_line_error([] { with({"optim=1"}); }, {"'optim' is a section", "optim.lr"});
  expect_one_line_error([] { with({"optim.lr"}); }, {"--set expects section.key=value", "'optim.lr'"});
}

TEST(Config, WrongTypeNamesTheKey) {
  expect_one_line_error([] { Config::parse("optim:\n  lr: fast\n", "x.yaml"); },
                        {"x.yaml", "optim.lr expects a number, got 'fast'"});
  expect_one_line_error([] { with({"model.d_model=7.5"}); }, {"model.d_model expects an integer, got '7.5'"});
  expect_one_line_error([] { with({"model.conv_bias=1"}); }, {"model.conv_bias expects true or false, got '1'"});
  expect_one_line_error([] { with({"optim.betas=0.9"}); }, {"optim.betas expects a list of two numbers"});
  expect_one_line_error([] { with({"optim.betas=[0.9, 0.95, 0.99]"}); }, {"optim.betas expects a list of two"});
  expect_one_line_error([] { with({"model.dt_rank=0"}); }, {"model.dt_rank expects a positive integer or auto"});
  expect_one_line_error([] { with({"train.seed="}); }, {"train.seed expects an integer, got ''"});
  expect_one_line_error([] { Config::parse("data:\n  seq_len: [1, 2]\n", "x.yaml"); },
                        {"data.seq_len expects an integer, got a list"});
  expect_one_line_error([] { Config::parse("model: 3\n", "x.yaml"); }, {"section 'model' must be a map"});
  expect_one_line_error([] { Config::parse("- 1\n- 2\n", "x.yaml"); }, {"x.yaml", "expected a map of sections"});
  expect_one_line_error([] { Config::parse("model:\n  d_model: [1\n", "x.yaml"); }, {"x.yaml:", "YAML syntax error"});
}

TEST(Config, OutOfRangeNamesTheKey) {
  expect_one_line_error([] { with({"optim.lr=-1"}); }, {"optim.lr must be > 0, got -1"});
  expect_one_line_error([] { with({"model.n_layer=0"}); }, {"model.n_layer must be in [1, 1024], got 0"});
  expect_one_line_error([] { with({"model.dt_rank=-3"}); }, {"model.dt_rank must be in [1, 65536] or auto, got -3"});
  expect_one_line_error([] { with({"optim.betas=[0.9, 1.5]"}); }, {"optim.betas entries must be in [0, 1)"});
  expect_one_line_error([] { with({"optim.decay_fraction=0"}); }, {"optim.decay_fraction must be in (0, 1], got 0"});
  expect_one_line_error([] { with({"train.dtype=f16"}); }, {"train.dtype must be one of f32, bf16, f64, got 'f16'"});
  expect_one_line_error([] { with({"train.device=gpu"}); }, {"train.device must be cpu, cuda or cuda:N, got 'gpu'"});
  expect_one_line_error([] { with({"optim.schedule=linear"}); },
                        {"optim.schedule must be one of cosine, wsd, constant"});
  expect_one_line_error([] { with({"train.name="}); }, {"train.name must not be empty"});
  expect_one_line_error([] { Config::parse("checkpoint:\n  keep_last: 0\n", "x.yaml"); },
                        {"x.yaml", "checkpoint.keep_last must be >= 1, got 0"});
}

TEST(Config, CombinationsAreChecked) {
  expect_one_line_error([] { with({"optim.lr=1e-4", "optim.min_lr=1e-3"}).validate(); }, {"optim.min_lr", "0.001"});
  expect_one_line_error(
      [] {
        with({"data.seq_len=100", "data.micro_batch_size=3"}).validate();
      },
      {"data.global_batch_tokens 524288", "multiple", "3 * 100 = 300"});
  expect_one_line_error([] { with({"train.max_tokens=1000000"}).validate(); },
                        {"train.max_steps (1000)", "train.max_tokens (1000000)", "both set"});
  expect_one_line_error([] { with({"train.max_steps=0"}).validate(); }, {"train.max_steps and train.max_tokens"});
  expect_one_line_error([] { with({"train.dtype=bf16"}).validate(); }, {"train.dtype bf16", "CUDA", "cpu"});
  expect_one_line_error(
      [] {
        with({"optim.state_dtype=bf16", "train.dtype=f64"}).validate();
      },
      {"optim.state_dtype bf16", "train.dtype f64"});
  expect_one_line_error([] { with({"optim.state_dtype=f16"}).validate(); }, {"optim.state_dtype", "f16"});
  expect_one_line_error([] { with({"optim.warmup_steps=5000"}).validate(); }, {"optim.warmup_steps", "1000", "5000"});
  expect_one_line_error(
      [] {
        with({"model.vocab_size=100", "data.tokenizer=byte"}).validate();
      },
      {"model.vocab_size 100", "byte tokenizer"});
  expect_one_line_error([] { with({"model.bias=true"}).validate(); }, {"model.bias"});
  // load() names the file and that overrides were applied.
  expect_one_line_error([] { Config::load(source_path("configs/tiny.yaml"), {"optim.min_lr=1"}); },
                        {"tiny.yaml with --set overrides", "optim.min_lr"});
  expect_one_line_error([] { Config::load("/nonexistent/x.yaml"); }, {"cannot read config file '/nonexistent/x.yaml'"});
}

TEST(Config, DerivedValues) {
  Config c = with({"train.max_steps=0", "train.max_tokens=1000001", "data.seq_len=100", "data.micro_batch_size=5",
                   "data.global_batch_tokens=2000", "train.name=abc", "log.runs_dir=/tmp/r"});
  EXPECT_EQ(c.total_steps(), 501);  // ceil(1000001 / 2000)
  EXPECT_EQ(c.grad_accum_steps(1), 4);
  EXPECT_EQ(c.grad_accum_steps(2), 2);
  expect_one_line_error([&] { c.grad_accum_steps(3); }, {"data.global_batch_tokens 2000", "5 * 100 * 3 = 1500"});
  EXPECT_EQ(c.run_dir(), "/tmp/r/abc");
  EXPECT_EQ(c.checkpoint_dir(), "/tmp/r/abc/checkpoints");
  c.set("checkpoint.dir=/ckpt");
  EXPECT_EQ(c.checkpoint_dir(), "/ckpt");
  c.set("optim.schedule=wsd");
  c.set("optim.decay_fraction=0.5");
  ScheduleConfig s = c.schedule_config();
  EXPECT_EQ(s.kind, ScheduleKind::wsd);
  EXPECT_EQ(s.total_steps, 501);
  EXPECT_EQ(s.decay_fraction, 0.5);
  AdamWConfig a = with({"optim.betas=[0.85, 0.98]", "optim.eps=1e-6", "optim.weight_decay=0.05"}).adamw_config();
  EXPECT_EQ(a.beta1, 0.85);
  EXPECT_EQ(a.beta2, 0.98);
  EXPECT_EQ(a.eps, 1e-6);
  EXPECT_EQ(a.weight_decay, 0.05);
}

// One non-default value for every key.
const std::vector<std::string> kEveryKeyChanged = {
    "model.d_model=24",
    "model.n_layer=3",
    "model.vocab_size=300",
    "model.d_state=5",
    "model.d_conv=3",
    "model.expand=3",
    "model.dt_rank=7",
    "model.dt_min=0.002",
    "model.dt_max=0.123456789012345",
    "model.dt_init_floor=3e-05",
    "model.conv_bias=false",
    "model.bias=true",
    "model.rms_norm=false",
    "model.norm_epsilon=1e-06",
    "model.residual_in_fp32=false",
    "model.tie_embeddings=false",
    "model.pad_vocab_size_multiple=16",
    "data.path=some dir/with: colon",
    "data.tokenizer=null",
    "data.seq_len=17",
    "data.micro_batch_size=3",
    "data.global_batch_tokens=102",
    "data.prefetch=0",
    "train.name=run #1",
    "train.max_steps=0",
    "train.max_tokens=300000000000",
    "train.seed=42",
    "train.device=cuda:3",
    "train.dtype=bf16",
    "train.grad_clip=0.5",
    "train.log_every=7",
    "train.max_nonfinite_steps=2",
    "optim.lr=0.1",
    "optim.min_lr=0.0001",
    "optim.betas=[0.5, 0.25]",
    "optim.eps=1e-12",
    "optim.weight_decay=0",
    "optim.schedule=wsd",
    "optim.warmup_steps=11",
    "optim.decay_fraction=0.3333333333333333",
    "optim.state_dtype=bf16",
    "eval.every=0",
    "eval.batches=0",
    "checkpoint.every=13",
    "checkpoint.keep_last=9",
    "checkpoint.dir='quoted'",
    "checkpoint.async=false",
    "train.init_from=runs/x/checkpoints/step_00000100.h5",
    "train.threads=3",
    "train.recompute=full",
    "log.tensorboard=true",
    "dist.backend=mpi",
    "dist.zero1=true",
    "dist.bucket_mb=2.5",
    "dist.timeout_s=30",
    "log.runs_dir=~",
};

TEST(Config, EveryKeyHasAnOverrideThatChangesIt) {
  std::set<std::string> covered;
  for (const std::string& o : kEveryKeyChanged) {
    const std::string key = o.substr(0, o.find('='));
    covered.insert(key);
    EXPECT_FALSE(with({o}) == Config()) << o << " does not change the config";
  }
  const std::vector<std::string> keys = config_keys();
  EXPECT_EQ(covered, std::set<std::string>(keys.begin(), keys.end()));
}

TEST(Config, YamlRoundTripIsIdentical) {
  Config c = with(kEveryKeyChanged);
  const std::string text = c.to_yaml();
  Config back = Config::parse(text, "dump");
  EXPECT_TRUE(back == c) << text;
  EXPECT_EQ(back.to_yaml(), text);
  EXPECT_EQ(back.data.tokenizer, "null");  // strings stay strings
  EXPECT_EQ(back.log.runs_dir, "~");
  EXPECT_EQ(back.checkpoint.dir, "'quoted'");
  EXPECT_EQ(back.model.dt_max, 0.123456789012345);
  EXPECT_EQ(back.optim.decay_fraction, 1.0 / 3.0);
  // dt_rank auto stays auto; every preset comes back identical.
  EXPECT_NE(Config().to_yaml().find("dt_rank: auto"), std::string::npos);
  for (const char* preset : {"tiny", "mamba-130m", "mamba-370m", "mamba-790m", "mamba-1.4b", "mamba-2.8b"}) {
    Config p = Config::load(source_path(std::string("configs/") + preset + ".yaml"));
    EXPECT_TRUE(Config::parse(p.to_yaml(), preset) == p) << preset;
  }
}

TEST(Config, EmptyFileGivesTheDefaults) {
  EXPECT_TRUE(Config::parse("", "empty") == Config());
  EXPECT_TRUE(Config::parse("# nothing\nmodel:\n", "empty") == Config());
}

TEST(Config, LenientInputsAreRefused) {
  TempDir dir;
  expect_one_line_error([&] { Config::load(dir.path()); }, {"config file '" + dir.path() + "' is a folder"});
  expect_one_line_error([] { Config::parse("optim:\n  lr: 1.0e-3\n  lr: 0.1\n", "dup.yaml"); },
                        {"dup.yaml: key optim.lr appears twice"});
  expect_one_line_error([] { Config::parse("optim: {lr: 0.1}\noptim: {eps: 1.0e-6}\n", "dup.yaml"); },
                        {"dup.yaml: section 'optim' appears twice"});
  expect_one_line_error([] { mamba_config_from_config_text("model: {d_model: 8, d_model: 16}\n", "m.yaml"); },
                        {"m.yaml: key model.d_model appears twice"});
  for (const char* name : {"../x", "a/b", ".", "..", "x\\y"})
    expect_one_line_error([&] { with({std::string("train.name=") + name}).validate(); },
                          {"train.name must be a folder name", name});
  EXPECT_NO_THROW(with({"train.name=run-2.b_c"}).validate());
}

TEST(Config, EveryKeyIsDocumented) {
  std::ifstream in(source_path("docs/CONFIG.md"));
  ASSERT_TRUE(in) << "docs/CONFIG.md is missing";
  std::stringstream doc;
  doc << in.rdbuf();
  for (const std::string& key : config_keys())
    EXPECT_NE(doc.str().find("`" + key + "`"), std::string::npos) << key << " is not in docs/CONFIG.md";
}

}  // namespace
