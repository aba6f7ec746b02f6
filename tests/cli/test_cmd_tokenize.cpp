// `serpent tokenize`: ids of stdin as JSON with a Hugging Face tokenizer, decoding them back, the
// byte tokenizer, and bad ids.
#include <nlohmann/json.hpp>

#include "data/bpe.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(TokenizeCommand, EncodesAndDecodes) {
  TempDir dir;
  const std::string text = "Hello world<|endoftext|> caf\xC3\xA9\n";
  write_file(dir / "in.txt", text);
  const std::string bin = SERPENT_BINARY;
  const ShellResult ids = run_shell(bin + " tokenize --tokenizer " + gpt2_json() + " < " + (dir / "in.txt"));
  ASSERT_EQ(ids.code, 0);
  EXPECT_EQ(nlohmann::json::parse(ids.output).get<std::vector<int32_t>>(), gpt2().encode(text));
  write_file(dir / "ids.json", ids.output);
  const ShellResult decoded =
      run_shell(bin + " tokenize --decode --tokenizer " + gpt2_json() + " < " + (dir / "ids.json"));
  EXPECT_EQ(decoded.output, text);
  EXPECT_EQ(decoded.code, 0);
  EXPECT_EQ(run_shell("printf 'hi' | " + bin + " tokenize --tokenizer byte").output, "[104,105]\n");
  write_file(dir / "bad.json", "[1, 300]");
  EXPECT_NE(run_shell(bin + " tokenize --decode --tokenizer byte < " + (dir / "bad.json") + " 2>/dev/null").code, 0);
}

TEST(TokenizeCommand, AFarTokenIdEndsCleanlyUnderAMemoryLimit) {
  // An added token with id 4e8 made the tokenizer size its tables by it (a bad_alloc, "internal
  // error"); now the id is refused first, within 300 MB.
  TempDir dir;
  nlohmann::json j = nlohmann::json::parse(byte_tokenizer_json());
  j["added_tokens"].push_back({{"id", 400000000}, {"content", "<far>"}, {"special", true}});
  write_file(dir / "far.json", j.dump());
  write_file(dir / "in.txt", "hello");
  const ShellResult r = run_limited(300, std::string(SERPENT_BINARY) + " tokenize --tokenizer " + dir / "far.json" +
                                             " < " + dir / "in.txt" + " 2>&1");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("400000000, outside 0 .."), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
}

}  // namespace
