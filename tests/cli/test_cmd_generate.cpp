// `serpent generate` as a user runs it: greedy generation against argmax decoding through the
// full-sequence forward (not the recurrent step the command uses), sampled generation against
// generate() with the same options, and where the tokenizer comes from.
#include <algorithm>

#include "data/tokenizer.h"
#include "infer/sampling.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

class GenerateCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    MambaConfig c = eval_model_config();
    c.vocab_size = 257;  // the byte tokenizer
    model_ = random_model(c, DType::f32, 29, 0.5);
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
