// Token shards in llm.c's format (data/shard.h): the layout byte by byte, the writer, broken files
// refused by name, the vocabulary check, and sequences of shards.
#include <filesystem>

#include "data/sha256.h"
#include "data/shard.h"
#include "data/text_source.h"
#include "tests/helpers.h"

namespace serpent {
namespace {

using testing::expect_error;
using testing::TempDir;
using testing::write_file;

// A shard laid out byte by byte as llm.c's write_datafile does (numpy int32 header of 256, then
// the tokens), independently of write_shard.
std::string llmc_shard(int32_t magic, int32_t version, const std::vector<uint32_t>& toks, int width,
                       int32_t count_override = -1) {
  std::vector<int32_t> header(256, 0);
  header[0] = magic;
  header[1] = version;
  header[2] = count_override >= 0 ? count_override : int32_t(toks.size());
  std::string bytes(reinterpret_cast<const char*>(header.data()), 1024);
  for (uint32_t t : toks) {
    if (width == 2) {
      const uint16_t v = uint16_t(t);
      bytes.append(reinterpret_cast<const char*>(&v), 2);
    } else {
      bytes.append(reinterpret_cast<const char*>(&t), 4);
    }
  }
  return bytes;
}

TEST(Shards, LlmcLayoutLoads) {
  TempDir dir;
  write_file(dir / "a.bin", llmc_shard(20240520, 1, {50256, 464, 2068, 65535}, 2));
  ShardReader r(dir / "a.bin");
  EXPECT_EQ(r.size(), 4);
  EXPECT_EQ(r.width(), TokenWidth::u16);
  std::vector<int64_t> got(4);
  r.read(0, 4, got.data());
  EXPECT_EQ(got, (std::vector<int64_t>{50256, 464, 2068, 65535}));
  write_file(dir / "b.bin", llmc_shard(20240801, 7, {128000, 9906, 4294967295u}, 4));
  ShardReader r32(dir / "b.bin");
  EXPECT_EQ(r32.width(), TokenWidth::u32);
  EXPECT_EQ(r32.at(0), 128000);
  EXPECT_EQ(r32.at(2), 4294967295LL);
}

TEST(Shards, WriterRoundTripsAndMatchesTheLayout) {
  TempDir dir;
  const std::vector<int32_t> ids = {0, 1, 2, 50276, 65535, 7};
  const std::string sha = write_shard(dir / "s16.bin", ids.data(), ids.size(), TokenWidth::u16);
  // Byte-identical to the independently laid out file, and the returned checksum is the file's.
  std::vector<uint32_t> u(ids.begin(), ids.end());
  EXPECT_EQ(read_file(dir / "s16.bin"), llmc_shard(20240520, 1, u, 2));
  EXPECT_EQ(sha, sha256_file(dir / "s16.bin"));
  const std::vector<int32_t> big = {100000, 3, 200000};
  write_shard(dir / "s32.bin", big.data(), big.size(), TokenWidth::u32);
  ShardReader r(dir / "s32.bin");
  EXPECT_EQ(r.at(0), 100000);
  EXPECT_EQ(r.at(2), 200000);
  EXPECT_EQ(token_width_for(50277), TokenWidth::u16);
  EXPECT_EQ(token_width_for(65536), TokenWidth::u16);
  EXPECT_EQ(token_width_for(65537), TokenWidth::u32);
  expect_error([&] { write_shard(dir / "bad.bin", big.data(), big.size(), TokenWidth::u16); },
               {"bad.bin", "100000", "uint16"});
  EXPECT_FALSE(std::filesystem::exists(dir / "bad.bin"));
}

TEST(Shards, BrokenFilesAreRefusedNamingTheFile) {
  TempDir dir;
  const std::vector<uint32_t> toks = {1, 2, 3, 4};
  write_file(dir / "magic.bin", llmc_shard(12345, 1, toks, 2));
  expect_error([&] { ShardReader r(dir / "magic.bin"); }, {"magic.bin", "magic 12345", "not a token shard"});
  write_file(dir / "version.bin", llmc_shard(20240520, 7, toks, 2));
  expect_error([&] { ShardReader r(dir / "version.bin"); }, {"version.bin", "version 7", "expected 1"});
  write_file(dir / "version32.bin", llmc_shard(20240801, 1, toks, 4));
  expect_error([&] { ShardReader r(dir / "version32.bin"); }, {"version32.bin", "version 1", "expected 7"});
  std::string cut = llmc_shard(20240520, 1, toks, 2);
  cut.resize(cut.size() - 3);
  write_file(dir / "truncated.bin", cut);
  expect_error([&] { ShardReader r(dir / "truncated.bin"); }, {"truncated.bin", "header says 4 tokens", "truncated"});
  write_file(dir / "extra.bin", llmc_shard(20240520, 1, toks, 2) + "xx");
  expect_error([&] { ShardReader r(dir / "extra.bin"); }, {"extra.bin", "1034 bytes"});
  write_file(dir / "count.bin", llmc_shard(20240520, 1, toks, 2, 1000));
  expect_error([&] { ShardReader r(dir / "count.bin"); }, {"count.bin", "1000 tokens"});
  write_file(dir / "short.bin", std::string(100, '\0'));
  expect_error([&] { ShardReader r(dir / "short.bin"); }, {"short.bin", "100 bytes", "header"});
  expect_error([&] { ShardReader r(dir / "missing.bin"); }, {"missing.bin"});
}

TEST(Shards, VocabularyCheckOnRequest) {
  TempDir dir;
  write_file(dir / "v.bin", llmc_shard(20240520, 1, {5, 300, 7}, 2));
  ShardReader r(dir / "v.bin");
  r.check_vocab(301);
  expect_error([&] { r.check_vocab(257); }, {"v.bin", "token 300", "position 1", "257"});
}

TEST(Shards, SequenceWriterSplitsAndFindsShards) {
  TempDir dir;
  ShardSequenceWriter w(dir.path(), "train", 4, TokenWidth::u16);
  std::vector<int32_t> ids(10);
  for (int i = 0; i < 10; ++i) ids[size_t(i)] = i;
  w.append(ids.data(), 3);
  w.append(ids.data() + 3, 7);
  const auto& shards = w.finish();
  ASSERT_EQ(shards.size(), 3u);
  EXPECT_EQ(shards[0].tokens, 4);
  EXPECT_EQ(shards[2].tokens, 2);
  const auto found = find_shards(dir.path(), "train");
  ASSERT_EQ(found.size(), 3u);
  std::vector<int64_t> all;
  for (const auto& p : found) {
    ShardReader r(p);
    EXPECT_EQ(sha256_file(p), shards[size_t(&p - found.data())].sha256);
    for (int64_t i = 0; i < r.size(); ++i) all.push_back(r.at(i));
  }
  EXPECT_EQ(all, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(find_shards(dir / "train_00000[02].bin", "").size(), 2u);
  expect_error([&] { find_shards(dir.path(), "val"); }, {"no val_*.bin shards", dir.path()});
}

TEST(Shards, LlmcNamesAndPatternsFindBothSplits) {
  TempDir dir;
  const std::vector<int32_t> ids = {1, 2, 3, 4};
  for (const char* name : {"fineweb_train_000001.bin", "fineweb_train_000002.bin", "fineweb_val_000000.bin",
                           "TinyStories_train.bin", "TinyStories_val.bin", "notes_training.bin", "val.txt"})
    write_shard(dir / name, ids.data(), ids.size(), TokenWidth::u16);
  auto names = [](const std::vector<std::string>& paths) {
    std::vector<std::string> out;
    for (const auto& p : paths) out.push_back(std::filesystem::path(p).filename().string());
    return out;
  };
  EXPECT_EQ(
      names(find_shards(dir.path(), "train")),
      (std::vector<std::string>{"TinyStories_train.bin", "fineweb_train_000001.bin", "fineweb_train_000002.bin"}));
  EXPECT_EQ(names(find_shards(dir.path(), "val")),
            (std::vector<std::string>{"TinyStories_val.bin", "fineweb_val_000000.bin"}));
  const std::string pattern = dir / "fineweb_train_*.bin";
  EXPECT_EQ(names(find_shards(pattern, "train")),
            (std::vector<std::string>{"fineweb_train_000001.bin", "fineweb_train_000002.bin"}));
  EXPECT_EQ(names(find_shards(pattern, "val")), (std::vector<std::string>{"fineweb_val_000000.bin"}));
  expect_error([&] { find_shards(dir / "TinyStories_*.bin", "val"); }, {"no 'train' to read as 'val'"});
  EXPECT_TRUE(shard_of_split("train_000000.bin", "train"));
  EXPECT_FALSE(shard_of_split("retrain_000000.bin", "train"));
  EXPECT_FALSE(shard_of_split("train_000000.bin.tmp", "train"));
}

}  // namespace
}  // namespace serpent
