// Dataset preparation (data/prepare.h): shards and manifest from a corpus, the documented split of
// documents into train and val, the same shards whatever the threads, and refusing to mix with an
// existing dataset. `serpent prepare` itself is in cli/test_cmd_prepare.cpp.
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "data/prepare.h"
#include "data/sha256.h"
#include "data/shard.h"
#include "data/text_source.h"
#include "data/tokenizer.h"
#include "tests/helpers.h"

namespace serpent {
namespace {

using testing::Corpus;
using testing::expect_error;
using testing::TempDir;
using testing::read_text_file;
using testing::write_file;
using testing::write_gz;

PrepareOptions options_for(const Corpus& c, const std::string& out) {
  PrepareOptions o;
  o.tokenizer = "byte";
  o.inputs = c.inputs();
  o.out = out;
  o.text_key = "body";
  o.val_fraction = 0.3;
  o.shard_tokens = 300;
  o.seed = 1;
  o.threads = 3;
  o.progress = false;
  return o;
}

// The documents of a split, read back from its shards: byte tokens between end-of-text ids.
std::vector<std::string> split_docs(const std::string& dir, const std::string& split) {
  std::vector<std::string> docs(1);
  for (const auto& p : find_shards(dir, split)) {
    ShardReader r(p);
    r.check_vocab(257);
    for (int64_t i = 0; i < r.size(); ++i) {
      if (r.at(i) == ByteTokenizer::kEot)
        docs.emplace_back();
      else
        docs.back().push_back(char(r.at(i)));
    }
  }
  EXPECT_TRUE(docs.back().empty()) << "the last document of " << split << " lacks its end-of-text";
  docs.pop_back();
  return docs;
}

TEST(Prepare, WritesShardsAndManifest) {
  Corpus c;
  TempDir out;
  ::testing::internal::CaptureStderr();
  const PrepareResult res = prepare_dataset(options_for(c, out.path()));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("docs.jsonl.gz:42: skipped broken line"), std::string::npos) << err;

  // Every document is in exactly one split, in order, followed by end-of-text; the split of
  // document i is the documented draw uniform(seed, i) < val_fraction.
  const auto train = split_docs(out.path(), "train"), val = split_docs(out.path(), "val");
  std::vector<std::string> want_train, want_val;
  int64_t want_tokens = 0;
  for (size_t i = 0; i < c.docs.size(); ++i) {
    (philox::uniform(1, i, 0.0, 1.0) < 0.3 ? want_val : want_train).push_back(c.docs[i]);
    want_tokens += int64_t(c.docs[i].size()) + 1;
  }
  EXPECT_EQ(train, want_train);
  EXPECT_EQ(val, want_val);
  ASSERT_FALSE(val.empty());

  const auto m = nlohmann::json::parse(read_file(out / "manifest.json"));
  EXPECT_EQ(m["tokenizer"]["name"], "byte");
  EXPECT_EQ(m["tokenizer"]["vocab_size"], 257);
  EXPECT_EQ(m["tokenizer"]["eot_id"], 256);
  EXPECT_EQ(m["token_dtype"], "uint16");
  EXPECT_EQ(m["broken_lines"], 6);
  EXPECT_EQ(res.broken_lines, 6);
  EXPECT_EQ(m["documents"]["train"].get<size_t>(), want_train.size());
  EXPECT_EQ(m["documents"]["val"].get<size_t>(), want_val.size());
  EXPECT_EQ(m["tokens"]["train"].get<int64_t>() + m["tokens"]["val"].get<int64_t>(), want_tokens);
  int64_t shard_tokens = 0;
  for (const auto& s : m["shards"]) {
    const std::string path = out / s["file"].get<std::string>();
    EXPECT_EQ(s["sha256"], sha256_file(path)) << path;
    EXPECT_EQ(s["tokens"], ShardReader(path).size());
    EXPECT_LE(s["tokens"].get<int64_t>(), 300);
    shard_tokens += s["tokens"].get<int64_t>();
  }
  EXPECT_EQ(shard_tokens, want_tokens);
}

TEST(Prepare, SameSeedSameShardsWhateverTheThreads) {
  Corpus c;
  TempDir a, b, d;
  PrepareOptions o = options_for(c, a.path());
  ::testing::internal::CaptureStderr();
  prepare_dataset(o);
  o.out = b.path();
  o.threads = 1;
  prepare_dataset(o);
  o.out = d.path();
  o.seed = 2;
  prepare_dataset(o);
  ::testing::internal::GetCapturedStderr();
  const auto ma = nlohmann::json::parse(read_file(a / "manifest.json"));
  const auto mb = nlohmann::json::parse(read_file(b / "manifest.json"));
  const auto md = nlohmann::json::parse(read_file(d / "manifest.json"));
  EXPECT_EQ(ma["shards"], mb["shards"]);
  EXPECT_NE(ma["shards"], md["shards"]);
  EXPECT_NE(split_docs(a.path(), "val"), split_docs(d.path(), "val"));
}

TEST(Prepare, RefusesToMixWithAnExistingDataset) {
  Corpus c;
  TempDir out;
  PrepareOptions o = options_for(c, out.path());
  ::testing::internal::CaptureStderr();
  prepare_dataset(o);
  write_file(out / "train_000099.bin", "stale");
  expect_error([&] { prepare_dataset(o); }, {"already holds a dataset", "--overwrite"});
  o.overwrite = true;
  prepare_dataset(o);
  ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(std::filesystem::exists(out / "train_000099.bin"));
  o.val_fraction = 1.5;
  expect_error([&] { prepare_dataset(o); }, {"--val-fraction", "1.5"});
}

TEST(Prepare, OverwriteKeepsTheOldDatasetUntilTheNewOneIsComplete) {
  Corpus c;
  TempDir out;
  PrepareOptions o = options_for(c, out.path());
  ::testing::internal::CaptureStderr();
  prepare_dataset(o);
  auto snapshot = [&] {
    std::map<std::string, std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(out.path()))
      files[e.path().filename().string()] = read_text_file(e.path().string());
    return files;
  };
  const auto before = snapshot();
  o.overwrite = true;
  // A typo in the input, an empty folder, a truncated gzip: each fails and leaves the old dataset.
  TempDir empty;
  std::string jl;
  for (int i = 0; i < 3000; ++i) jl += "{\"body\": \"line " + std::to_string(i) + " of a document\"}\n";
  write_gz(empty / "whole.jsonl.gz", jl);
  const std::string gz = read_text_file(empty / "whole.jsonl.gz");
  std::filesystem::create_directories(empty / "nothing");
  write_file(empty / "cut.jsonl.gz", gz.substr(0, gz.size() / 2));
  for (const std::string& bad : {c.dir / "no_such_input", empty / "nothing", empty / "cut.jsonl.gz"}) {
    SCOPED_TRACE(bad);
    PrepareOptions b = o;
    b.inputs = {bad};
    EXPECT_THROW(prepare_dataset(b), Error);
    EXPECT_EQ(snapshot(), before) << "the old dataset must be untouched, and no staging folder left";
  }
  // A good input replaces it, leaving nothing but the new dataset.
  PrepareOptions good = o;
  good.inputs = {empty / "whole.jsonl.gz"};
  const PrepareResult r = prepare_dataset(good);
  ::testing::internal::GetCapturedStderr();
  for (const std::string& s : r.shards) EXPECT_TRUE(std::filesystem::exists(s)) << s;
  for (const auto& [name, bytes] : snapshot()) EXPECT_EQ(name.rfind(".prepare-", 0), std::string::npos) << name;
  EXPECT_NE(snapshot(), before);
}

}  // namespace
}  // namespace serpent
