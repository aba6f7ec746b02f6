// A prepared dataset as training opens it (data/dataset.h): the manifest's shards, each checked
// against it (presence, token count, sha256), unlisted shards left out, every token id against the
// vocabulary; the full read cached by size and modification time.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "data/prepare.h"
#include "data/shard.h"
#include "tests/helpers.h"

namespace fs = std::filesystem;
using namespace serpent;
using namespace serpent::testing;

namespace {

// A byte dataset of a few shards (the corpus of tests/helpers.h), prepared as users do.
std::string prepared(const TempDir& dir) {
  Corpus c;
  PrepareOptions o;
  o.tokenizer = "byte";
  o.inputs = c.inputs();
  o.out = dir / "ds";
  o.text_key = "body";
  o.val_fraction = 0.3;
  o.shard_tokens = 300;
  o.seed = 1;
  o.progress = false;
  ::testing::internal::CaptureStderr();
  prepare_dataset(o);
  ::testing::internal::GetCapturedStderr();
  return o.out;
}

nlohmann::json manifest_of(const std::string& ds) {
  std::ifstream in(ds + "/manifest.json");
  return nlohmann::json::parse(in);
}

void write_manifest(const std::string& ds, const nlohmann::json& m) {
  std::ofstream(ds + "/manifest.json") << m.dump(2);
}

}  // namespace

TEST(Dataset, OpensTheListedShardsAndCachesTheFullRead) {
  TempDir dir;
  const std::string ds = prepared(dir);
  const nlohmann::json m = manifest_of(ds);
  const DatasetShards first = open_dataset(ds, 257);
  size_t listed_train = 0;
  for (const auto& s : m["shards"]) listed_train += s["split"] == "train";
  EXPECT_EQ(first.train.size(), listed_train);
  EXPECT_EQ(first.train.size() + first.val.size(), m["shards"].size());
  EXPECT_GT(first.bytes_read, 0);
  EXPECT_TRUE(first.warnings.empty());
  EXPECT_TRUE(fs::exists(ds + "/.verified.json"));
  // The second start reads nothing in full.
  EXPECT_EQ(open_dataset(ds, 257).bytes_read, 0);
  // A shard whose modification time changed is read again (and still matches).
  const std::string one = first.train[0];
  struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, one.c_str(), times, 0), 0);
  EXPECT_EQ(open_dataset(ds, 257).bytes_read, int64_t(fs::file_size(one)));
  // The vocabulary check uses the cached largest id: a smaller model is refused at once.
  expect_error([&] { open_dataset(ds, 200); }, {"token id", "outside the model's vocabulary of 200 ids"});
}

TEST(Dataset, WhatTheManifestSaysIsChecked) {
  TempDir dir;
  const std::string ds = prepared(dir);
  const nlohmann::json good = manifest_of(ds);
  const std::string first = ds + "/" + good["shards"][0]["file"].get<std::string>();

  nlohmann::json m = good;
  m["shards"][0]["sha256"] = std::string(64, '0');
  write_manifest(ds, m);
  expect_error([&] { open_dataset(ds, 257); }, {first, "sha256", "the file changed after prepare"});

  m = good;
  m["shards"][0]["tokens"] = m["shards"][0]["tokens"].get<int64_t>() + 1;
  m["tokens"]["train"] = m["tokens"]["train"].get<int64_t>() + 1;
  write_manifest(ds, m);
  expect_error([&] { open_dataset(ds, 257); }, {first, "tokens but the manifest lists"});

  m = good;
  m["tokens"]["val"] = 1;
  write_manifest(ds, m);
  expect_error([&] { open_dataset(ds, 257); }, {"tokens.val is 1 but its shards hold"});

  write_manifest(ds, good);
  fs::rename(first, dir / "moved.bin");
  expect_error([&] { open_dataset(ds, 257); }, {first, "is listed in", "but missing"});
  fs::rename(dir / "moved.bin", first);

  // A shard the manifest does not list is not trained on.
  const std::vector<int32_t> extra(100, 65);
  write_shard(ds + "/train_000099.bin", extra.data(), extra.size(), TokenWidth::u16);
  const DatasetShards d = open_dataset(ds, 257);
  ASSERT_EQ(d.warnings.size(), 1u);
  EXPECT_NE(d.warnings[0].find("train_000099.bin is not listed"), std::string::npos) << d.warnings[0];
  for (const std::string& p : d.train) EXPECT_EQ(p.find("train_000099"), std::string::npos);

  // A shard edited in place (same size) is caught by its checksum, though its size is unchanged.
  std::string bytes = read_text_file(first);
  bytes[2000 % bytes.size()] ^= 1;
  write_file(first, bytes);
  expect_error([&] { open_dataset(ds, 257); }, {first, "sha256"});
}

TEST(Dataset, FoldersWithoutAManifestGetTheVocabularyCheck) {
  TempDir dir;
  fs::create_directories(dir / "raw");
  std::vector<int32_t> ids(5000, 10);
  ids[4321] = 300;  // one bad id in the middle of a shard
  write_shard(dir / "raw/train_000000.bin", ids.data(), ids.size(), TokenWidth::u16);
  expect_error([&] { open_dataset(dir / "raw", 257); },
               {"train_000000.bin", "token id 300", "position 4321", "vocabulary of 257"});
  EXPECT_EQ(open_dataset(dir / "raw", 301).train.size(), 1u);
  // A read-only folder cannot keep the cache: said, not fatal.
  fs::remove(dir / "raw/.verified.json");
  fs::permissions(dir / "raw", fs::perms::owner_write, fs::perm_options::remove);
  if (::geteuid() != 0) {  // root writes anyway
    const DatasetShards d = open_dataset(dir / "raw", 301);
    ASSERT_EQ(d.warnings.size(), 1u);
    EXPECT_NE(d.warnings[0].find("cannot write"), std::string::npos);
  }
  fs::permissions(dir / "raw", fs::perms::owner_write, fs::perm_options::add);
}

TEST(Dataset, LlmcShardsByFolderOrPattern) {
  TempDir dir;
  std::vector<int32_t> ids(3000);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i % 50257);
  fs::create_directories(dir / "fineweb10B");
  for (const char* name : {"fineweb_train_000001.bin", "fineweb_train_000002.bin", "fineweb_val_000000.bin"})
    write_shard(dir / ("fineweb10B/" + std::string(name)), ids.data(), ids.size(), TokenWidth::u16);
  for (const std::string& where : {dir / "fineweb10B", dir / "fineweb10B/fineweb_train_*.bin"}) {
    const DatasetShards d = open_dataset(where, 50257);
    EXPECT_EQ(d.train.size(), 2u) << where;
    ASSERT_EQ(d.val.size(), 1u) << where;
    EXPECT_NE(d.val[0].find("fineweb_val_000000.bin"), std::string::npos);
  }
}
