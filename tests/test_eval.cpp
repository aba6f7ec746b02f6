// `serpent eval` and `serpent generate` as a user runs them. Eval is checked against a
// token-weighted mean NLL computed here independently: the windows of each hand-built val shard
// cut by hand, each scored by MambaLM::forward alone and a log-softmax in double. Greedy
// generation is checked against argmax decoding through the full-sequence forward (not the
// recurrent step the command uses); sampled generation against generate() with the same options.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "autograd/node.h"
#include "cli_helpers.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "data_helpers.h"
#include "helpers.h"
#include "layers/mamba_config_yaml.h"
#include "io/checkpoint.h"
#include "infer/sampling.h"

namespace fs = std::filesystem;
using namespace serpent;
using namespace serpent::testing;

namespace {

// A model whose every parameter is random (A_log and D included, which init makes regular).
std::unique_ptr<MambaLM> random_model(const MambaConfig& cfg, uint64_t seed) {
  Generator gen(seed);
  auto model = std::make_unique<MambaLM>(cfg, gen);
  autograd::NoGradGuard no_grad;
  for (auto& [name, p] : model->named_parameters()) {
    Tensor noise = uniform(p.shape(), -0.5, 0.5, gen);
    add_(p, noise);
  }
  return model;
}

void save_model(const std::string& path, const MambaLM& model, const std::string& extra_config) {
  Checkpoint c;
  c.config_yaml = mamba_config_yaml_text(model.config()) + extra_config;
  c.model = model.named_parameters();
  save_checkpoint(path, c);
}

// Sum over positions of -log softmax(logits)[target], in double, over all padded-vocabulary
// columns (what the model's distribution is).
double nll_sum(const Tensor& logits, const std::vector<int64_t>& targets) {
  const int64_t L = logits.size(1), V = logits.size(2);
  const std::vector<double> x = logits.to_vector<double>();
  double total = 0;
  for (int64_t t = 0; t < L; ++t) {
    const double* row = x.data() + t * V;
    double mx = row[0];
    for (int64_t v = 1; v < V; ++v) mx = std::max(mx, row[v]);
    double s = 0;
    for (int64_t v = 0; v < V; ++v) s += std::exp(row[v] - mx);
    total += mx + std::log(s) - row[targets[size_t(t)]];
  }
  return total;
}

// The definition of the validation loss: each shard cut into windows of L + 1 tokens starting
// every L tokens (the last one shorter), every window scored on its own from an empty state.
std::pair<double, int64_t> expected_loss(const MambaLM& model, const std::vector<std::vector<int64_t>>& shards,
                                         int64_t L) {
  autograd::NoGradGuard no_grad;
  double total = 0;
  int64_t count = 0;
  for (const auto& tokens : shards) {
    const int64_t T = int64_t(tokens.size());
    for (int64_t start = 0; T - start >= 2; start += L) {
      const int64_t n = std::min(L, T - 1 - start);  // targets in this window
      std::vector<int64_t> in(tokens.begin() + start, tokens.begin() + start + n);
      std::vector<int64_t> tgt(tokens.begin() + start + 1, tokens.begin() + start + n + 1);
      total += nll_sum(model.forward(from_vector(in, {1, n})), tgt);
      count += n;
    }
  }
  return {total / double(count), count};
}

void write_tokens(const std::string& path, const std::vector<int64_t>& tokens) {
  std::vector<int32_t> ids(tokens.begin(), tokens.end());
  write_shard(path, ids.data(), ids.size(), TokenWidth::u16);
}

MambaConfig eval_model_config() {
  MambaConfig c;
  c.d_model = 8;
  c.n_layer = 2;
  c.vocab_size = 11;  // padded to 16
  c.d_state = 3;
  c.d_conv = 3;
  return c;
}

void expect_one_line_error(const CliResult& r, const std::string& command, const std::vector<std::string>& parts) {
  EXPECT_EQ(r.code, 1);
  const std::vector<std::string> lines = lines_of(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_EQ(lines[0].rfind("serpent " + command + ": error: ", 0), 0u) << lines[0];
  for (const std::string& p : parts) EXPECT_NE(lines[0].find(p), std::string::npos) << lines[0];
}

class EvalCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    Generator gen(3);
    for (int64_t T : {23, 10}) {
      std::vector<int64_t> s;
      for (int64_t i = 0; i < T; ++i) s.push_back(int64_t(gen.uniform() * 11));
      shards_.push_back(s);
    }
    fs::create_directories(data_);
    write_tokens(data_ + "/val_000000.bin", shards_[0]);
    write_tokens(data_ + "/val_000001.bin", shards_[1]);
    write_tokens(data_ + "/train_000000.bin", shards_[1]);
    model_ = random_model(eval_model_config(), 17);
    // Windows of 4 tokens, 3 per batch: 6 + 3 windows, batches with padded rows and a short last one.
    save_model(ckpt_, *model_, "data:\n  path: " + data_ + "\n  seq_len: 4\n  micro_batch_size: 3\n");
  }

  nlohmann::json eval_json(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"eval", "--checkpoint", ckpt_, "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    const CliResult r = run_serpent(args, dir_.path());
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(lines_of(r.out).size(), 1u) << r.out;
    return nlohmann::json::parse(r.out);
  }

  TempDir dir_;
  std::string data_ = dir_ / "data", ckpt_ = dir_ / "model.h5";
  std::vector<std::vector<int64_t>> shards_;
  std::unique_ptr<MambaLM> model_;
};

TEST_F(EvalCommand, LossIsTheTokenWeightedMeanNllOverTheWholeValSplit) {
  const auto [loss, tokens] = expected_loss(*model_, shards_, 4);
  EXPECT_EQ(tokens, 22 + 9);
  const nlohmann::json j = eval_json({});
  EXPECT_EQ(j.size(), 3u);
  EXPECT_EQ(j["tokens"].get<int64_t>(), tokens);
  EXPECT_NEAR(j["loss"].get<double>(), loss, 1e-6 * loss);
  EXPECT_NEAR(j["ppl"].get<double>(), std::exp(loss), 1e-6 * std::exp(loss));
  // The answer is not one a uniform guess would give.
  EXPECT_GT(std::fabs(loss - std::log(16.0)), 0.05);
}

TEST_F(EvalCommand, OptionsOverrideTheCheckpointsDataAndWindows) {
  const auto [loss7, tokens7] = expected_loss(*model_, shards_, 7);
  const nlohmann::json j = eval_json({"--seq-len", "7", "--batch-size", "2"});
  EXPECT_EQ(j["tokens"].get<int64_t>(), tokens7);
  EXPECT_NEAR(j["loss"].get<double>(), loss7, 1e-6 * loss7);
  const auto [loss4, tokens4] = expected_loss(*model_, shards_, 4);
  EXPECT_GT(std::fabs(loss7 - loss4), 1e-4);  // other windows, another answer

  const auto [loss_one, tokens_one] = expected_loss(*model_, {shards_[1]}, 4);
  const nlohmann::json one = eval_json({"--data", data_ + "/val_000001.bin"});
  EXPECT_EQ(one["tokens"].get<int64_t>(), tokens_one);
  EXPECT_NEAR(one["loss"].get<double>(), loss_one, 1e-6 * loss_one);

  const CliResult text = run_serpent({"eval", "--checkpoint", ckpt_}, dir_.path());
  EXPECT_EQ(text.code, 0);
  EXPECT_NE(text.out.find("over 31 tokens"), std::string::npos) << text.out;
}

TEST_F(EvalCommand, MistakesGiveOneLine) {
  expect_one_line_error(run_serpent({"eval", "--checkpoint", dir_ / "none.h5"}, dir_.path()), "eval",
                        {"none.h5", "no such file"});
  const std::string bare = dir_ / "bare.h5";  // what import-hf writes: the model section only
  save_model(bare, *model_, "");
  expect_one_line_error(run_serpent({"eval", "--checkpoint", bare}, dir_.path()), "eval", {"no data.path", "--data"});
  expect_one_line_error(run_serpent({"eval", "--checkpoint", ckpt_, "--data", dir_ / "empty"}, dir_.path()), "eval",
                        {"empty"});
}

// ---- generate ----

class GenerateCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    MambaConfig c = eval_model_config();
    c.vocab_size = 257;  // the byte tokenizer
    model_ = random_model(c, 29);
    save_model(ckpt_, *model_, "data:\n  tokenizer: byte\n");
  }
  CliResult generate(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"generate", "--checkpoint", ckpt_};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_serpent(args, dir_.path());
  }

  TempDir dir_;
  std::string ckpt_ = dir_ / "model.h5";
  std::unique_ptr<MambaLM> model_;
};

TEST_F(GenerateCommand, GreedyTextIsArgmaxOfTheFullForward) {
  const std::string prompt = "Hi";
  std::vector<int64_t> ids(prompt.begin(), prompt.end());
  std::string expected = prompt;
  {
    autograd::NoGradGuard no_grad;
    for (int i = 0; i < 12; ++i) {
      const Tensor logits = model_->forward(from_vector(ids, {1, int64_t(ids.size())}));
      const std::vector<float> all = logits.to_vector<float>();
      const float* last = all.data() + (ids.size() - 1) * size_t(logits.size(2));
      const int64_t next = int64_t(std::max_element(last, last + 257) - last);
      if (next == ByteTokenizer::kEot) break;
      ids.push_back(next);
      expected += char(next);
    }
  }
  ASSERT_GT(expected.size(), prompt.size());
  const CliResult r = generate({"--prompt", prompt, "--max-new-tokens", "12", "--temperature", "0"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, expected + "\n");
}

TEST_F(GenerateCommand, SamplingFollowsTheOptionsAndTheSeed) {
  const std::vector<std::string> opts = {"--prompt", "The", "--max-new-tokens", "40",  "--temperature", "0.9",
                                         "--top-k",  "50",  "--top-p",          "0.95"};
  auto with_seed = [&](const std::string& seed) {
    std::vector<std::string> a = opts;
    a.insert(a.end(), {"--seed", seed});
    const CliResult r = generate(a);
    EXPECT_EQ(r.code, 0) << r.err;
    return r.out;
  };
  GenerateOptions g;
  g.max_new_tokens = 40;
  g.sampling = {0.9, 50, 0.95, 7};
  g.stop_token = ByteTokenizer::kEot;
  std::string expected = "The";
  for (int64_t t : serpent::generate(*model_, {'T', 'h', 'e'}, g)) expected += char(t);
  const std::string seven = with_seed("7");
  EXPECT_EQ(seven, expected + "\n");
  EXPECT_EQ(with_seed("7"), seven);
  EXPECT_NE(with_seed("8"), seven);
}

TEST_F(GenerateCommand, TokenizerComesFromTheCheckpointOrTheCommandLine) {
  const std::string bare = dir_ / "bare.h5";
  save_model(bare, *model_, "");
  expect_one_line_error(run_serpent({"generate", "--checkpoint", bare, "--prompt", "a"}, dir_.path()), "generate",
                        {"does not name its tokenizer", "--tokenizer"});
  const CliResult with_tok = run_serpent(
      {"generate", "--checkpoint", bare, "--prompt", "a", "--tokenizer", "byte", "--temperature", "0"}, dir_.path());
  EXPECT_EQ(with_tok.code, 0) << with_tok.err;
  EXPECT_EQ(with_tok.out, generate({"--prompt", "a", "--temperature", "0"}).out);
  expect_one_line_error(generate({"--prompt", "a", "--temperature", "-1"}), "generate", {"temperature must be >= 0"});
  expect_one_line_error(generate({"--prompt", ""}), "generate", {"--prompt is empty"});
  const std::string neox = std::string(SERPENT_SOURCE_DIR) + "/data/tokenizers/gpt-neox-20b/tokenizer.json";
  expect_one_line_error(generate({"--prompt", "a", "--tokenizer", neox}), "generate", {"50277 ids", "only 257"});
}

}  // namespace
