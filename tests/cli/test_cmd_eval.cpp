// `serpent eval` as a user runs it, checked against a token-weighted mean NLL computed here
// independently: the windows of each hand-built val shard cut by hand, each scored by
// MambaLM::forward alone and a log-softmax in double.
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/shard.h"
#include "tests/helpers.h"

namespace fs = std::filesystem;
using namespace serpent;
using namespace serpent::testing;

namespace {

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
    model_ = random_model(eval_model_config(), DType::f32, 17, 0.5);
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

TEST(EvalBitsPerByte, ComeFromTheManifestsByteCount) {
  TempDir dir;
  Corpus c;
  ASSERT_EQ(run_serpent_shell("prepare --tokenizer byte --input " + c.dir / "docs.jsonl" + " --text-key body --out " +
                              dir / "ds" + " --val-fraction 0.3 --quiet")
                .code,
            0);
  // With bytes as tokens, the val split's bytes are its tokens but the end-of-text ids: counted
  // from the shards, independently of the manifest.
  int64_t tokens = 0, eots = 0;
  for (const std::string& p : find_shards(dir / "ds", "val")) {
    ShardReader r(p);
    tokens += r.size();
    for (int64_t i = 0; i < r.size(); ++i) eots += r.at(i) == 256;
  }
  const nlohmann::json m = nlohmann::json::parse(read_text_file(dir / "ds/manifest.json"));
  ASSERT_GT(eots, 0);
  EXPECT_EQ(m["bytes"]["val"].get<int64_t>(), tokens - eots);
  MambaConfig cfg = byte_config();
  cfg.vocab_size = 257;
  const auto model = random_model(cfg, DType::f32, 5);
  save_model(dir / "m.h5", *model, "data:\n  path: " + (dir / "ds") + "\n  tokenizer: byte\n");
  const ShellResult r =
      run_shell(std::string(SERPENT_BINARY) + " eval --checkpoint " + dir / "m.h5" + " --json 2>/dev/null");
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output);
  const double tokens_per_byte = double(tokens) / double(tokens - eots);
  EXPECT_NEAR(j["bits_per_byte"].get<double>(), j["loss"].get<double>() * tokens_per_byte / std::log(2.0), 1e-12);
  const ShellResult line =
      run_shell(std::string(SERPENT_BINARY) + " eval --checkpoint " + dir / "m.h5" + " 2>/dev/null");
  EXPECT_NE(line.output.find(" bits per byte, over "), std::string::npos) << line.output;
  // Shards named directly carry no byte count: no bits per byte.
  const ShellResult direct = run_shell(std::string(SERPENT_BINARY) + " eval --checkpoint " + dir / "m.h5" +
                                       " --data '" + dir / "ds/val_*.bin" + "' --json 2>/dev/null");
  EXPECT_FALSE(nlohmann::json::parse(direct.output).contains("bits_per_byte")) << direct.output;
}

TEST_F(EvalCommand, WindowsAreNoLongerThanTheSplit) {
  // An absurd window or batch would only allocate padding: the same loss as one whole window.
  const CliResult huge = run_serpent(
      {"eval", "--checkpoint", ckpt_, "--seq-len", "100000000", "--batch-size", "100000000", "--json"}, dir_.path());
  ASSERT_EQ(huge.code, 0) << huge.err;
  EXPECT_NE(huge.err.find("longer than the longest val shard"), std::string::npos) << huge.err;
  const CliResult whole = run_serpent({"eval", "--checkpoint", ckpt_, "--seq-len", "100000", "--json"}, dir_.path());
  ASSERT_EQ(whole.code, 0) << whole.err;
  EXPECT_EQ(nlohmann::json::parse(huge.out)["loss"], nlohmann::json::parse(whole.out)["loss"]);
}

}  // namespace
