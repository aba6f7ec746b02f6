// `serpent prepare` end to end with a Hugging Face tokenizer: broken lines reported, the manifest
// naming the tokenizer and its checksum. The preparation itself is in data/test_prepare.cpp.
#include <nlohmann/json.hpp>

#include "data/sha256.h"
#include "data/text_source.h"
#include "tests/helpers.h"

namespace serpent {
namespace {

using testing::Corpus;
using testing::run_serpent_shell;
using testing::ShellResult;
using testing::TempDir;

TEST(PrepareCommand, TokenizesJsonlWithAHuggingFaceTokenizer) {
  Corpus c;
  TempDir out;
  const ShellResult r = run_serpent_shell("prepare --tokenizer " + std::string(SERPENT_SOURCE_DIR) +
                                          "/data/tokenizers/gpt2/tokenizer.json --input " + (c.dir / "docs.jsonl") +
                                          " --text-key body --val-fraction 0.1 --out " + out.path());
  const std::string& log = r.output;
  EXPECT_EQ(r.code, 0) << log;
  EXPECT_NE(log.find("3 broken lines skipped"), std::string::npos) << log;
  const auto m = nlohmann::json::parse(read_file(out / "manifest.json"));
  EXPECT_EQ(m["tokenizer"]["eot_id"], 50256);
  EXPECT_EQ(m["documents"]["train"].get<int>() + m["documents"]["val"].get<int>(), 41);
  EXPECT_EQ(m["tokenizer"]["sha256"],
            sha256_file(std::string(SERPENT_SOURCE_DIR) + "/data/tokenizers/gpt2/tokenizer.json"));
}

}  // namespace
}  // namespace serpent
