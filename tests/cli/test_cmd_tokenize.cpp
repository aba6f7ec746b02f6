// `serpent tokenize`: ids of stdin as JSON with a Hugging Face tokenizer, decoding them back, the
// byte tokenizer, and bad ids.
#include <nlohmann/json.hpp>

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

}  // namespace
