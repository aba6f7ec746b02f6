// Token shards (llm.c format), SHA-256, text sources and `serpent prepare`.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "data/prepare.h"
#include "data/sha256.h"
#include "data/shard.h"
#include "data/text_source.h"
#include "data/tokenizer.h"
#include "tests/data_helpers.h"
#include "tests/helpers.h"

namespace serpent {
namespace {

using testing::expect_error;
using testing::TempDir;
using testing::write_bytes;

// ---- SHA-256 ----------------------------------------------------------------------------------

// Test vectors from FIPS 180-4's examples and NIST's SHA-256 example values.
TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 5000; ++i) data.push_back(char(i * 7 + i / 13));
  for (size_t step : {1, 3, 63, 64, 65, 1000}) {
    Sha256 h;
    for (size_t i = 0; i < data.size(); i += step) h.update(data.data() + i, std::min(step, data.size() - i));
    EXPECT_EQ(h.hex_digest(), sha256_hex(data)) << "chunks of " << step;
  }
  TempDir dir;
  write_bytes(dir / "f", data);
  EXPECT_EQ(sha256_file(dir / "f"), sha256_hex(data));
}

// ---- Shards -----------------------------------------------------------------------------------

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
  write_bytes(dir / "a.bin", llmc_shard(20240520, 1, {50256, 464, 2068, 65535}, 2));
  ShardReader r(dir / "a.bin");
  EXPECT_EQ(r.size(), 4);
  EXPECT_EQ(r.width(), TokenWidth::u16);
  std::vector<int64_t> got(4);
  r.read(0, 4, got.data());
  EXPECT_EQ(got, (std::vector<int64_t>{50256, 464, 2068, 65535}));
  write_bytes(dir / "b.bin", llmc_shard(20240801, 7, {128000, 9906, 4294967295u}, 4));
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
  write_bytes(dir / "magic.bin", llmc_shard(12345, 1, toks, 2));
  expect_error([&] { ShardReader r(dir / "magic.bin"); }, {"magic.bin", "magic 12345", "not a token shard"});
  write_bytes(dir / "version.bin", llmc_shard(20240520, 7, toks, 2));
  expect_error([&] { ShardReader r(dir / "version.bin"); }, {"version.bin", "version 7", "expected 1"});
  write_bytes(dir / "version32.bin", llmc_shard(20240801, 1, toks, 4));
  expect_error([&] { ShardReader r(dir / "version32.bin"); }, {"version32.bin", "version 1", "expected 7"});
  std::string cut = llmc_shard(20240520, 1, toks, 2);
  cut.resize(cut.size() - 3);
  write_bytes(dir / "truncated.bin", cut);
  expect_error([&] { ShardReader r(dir / "truncated.bin"); }, {"truncated.bin", "header says 4 tokens", "truncated"});
  write_bytes(dir / "extra.bin", llmc_shard(20240520, 1, toks, 2) + "xx");
  expect_error([&] { ShardReader r(dir / "extra.bin"); }, {"extra.bin", "1034 bytes"});
  write_bytes(dir / "count.bin", llmc_shard(20240520, 1, toks, 2, 1000));
  expect_error([&] { ShardReader r(dir / "count.bin"); }, {"count.bin", "1000 tokens"});
  write_bytes(dir / "short.bin", std::string(100, '\0'));
  expect_error([&] { ShardReader r(dir / "short.bin"); }, {"short.bin", "100 bytes", "header"});
  expect_error([&] { ShardReader r(dir / "missing.bin"); }, {"missing.bin"});
}

TEST(Shards, VocabularyCheckOnRequest) {
  TempDir dir;
  write_bytes(dir / "v.bin", llmc_shard(20240520, 1, {5, 300, 7}, 2));
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

// ---- Text sources and prepare -------------------------------------------------------------------

void write_gz(const std::string& path, const std::string& text) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, text.data(), unsigned(text.size()));
  gzclose(f);
}

// A small corpus: two .txt files in a folder (plus a file prepare must skip), and the same JSONL
// lines plain and gzipped, three of them broken.
struct Corpus {
  TempDir dir;
  std::vector<std::string> docs;  // every good document, in reading order
  Corpus() {
    write_bytes(dir / "txt/a.txt", "First text file.\nTwo lines.\n");
    write_bytes(dir / "txt/sub/b.txt", "Second file, in a subfolder: caf\xC3\xA9.");
    write_bytes(dir / "txt/notes.md", "skipped: not .txt");
    std::string jl;
    for (int i = 0; i < 40; ++i) jl += nlohmann::json{{"body", "document number " + std::to_string(i)}}.dump() + "\n";
    jl += "{\"body\": \"unterminated\n";            // broken: invalid JSON
    jl += "[1, 2, 3]\n";                            // broken: not an object
    jl += "{\"text\": \"wrong key\"}\n";            // broken: no "body"
    jl += "\n";                                     // blank: skipped silently
    jl += "{\"body\": \"last line, no newline\"}";  // good
    write_bytes(dir / "docs.jsonl", jl);
    write_gz(dir / "docs.jsonl.gz", jl);
    docs = {"First text file.\nTwo lines.\n", "Second file, in a subfolder: caf\xC3\xA9."};
    for (int pass = 0; pass < 2; ++pass) {
      for (int i = 0; i < 40; ++i) docs.push_back("document number " + std::to_string(i));
      docs.push_back("last line, no newline");
    }
  }
  std::vector<std::string> inputs() const { return {dir / "txt", dir / "docs.jsonl", dir / "docs.jsonl.gz"}; }
};

TEST(TextSource, ReadsFoldersAndJsonlSkippingBrokenLines) {
  Corpus c;
  DocumentReader r(c.inputs(), "body");
  std::vector<std::string> got;
  std::string text;
  ::testing::internal::CaptureStderr();
  while (r.next(text)) got.push_back(text);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(got, c.docs);
  EXPECT_EQ(r.broken_lines(), 6);
  EXPECT_EQ(r.skipped_files(), 1);
  EXPECT_NE(err.find(c.dir / "docs.jsonl:41: skipped broken line: invalid JSON"), std::string::npos) << err;
  EXPECT_NE(err.find(c.dir / "docs.jsonl:42: skipped broken line: not a JSON object"), std::string::npos) << err;
  EXPECT_NE(err.find(c.dir / "docs.jsonl.gz:43: skipped broken line: no \"body\" member"), std::string::npos) << err;
}

TEST(TextSource, DamagedGzipIsAnErrorNamingTheFile) {
  TempDir dir;
  std::string jl;
  Generator gen(3);
  for (int i = 0; i < 2000; ++i) jl += "{\"text\": \"" + std::to_string(gen.uniform()) + "\"}\n";
  write_gz(dir / "whole.jsonl.gz", jl);
  std::ifstream in(dir / "whole.jsonl.gz", std::ios::binary);
  std::string gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write_bytes(dir / "cut.jsonl.gz", gz.substr(0, gz.size() / 2));
  DocumentReader r({dir / "cut.jsonl.gz"}, "text");
  std::string text;
  expect_error(
      [&] {
        while (r.next(text)) {
        }
      },
      {"cut.jsonl.gz", "damaged or truncated"});
}

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
  write_bytes(out / "train_000099.bin", "stale");
  expect_error([&] { prepare_dataset(o); }, {"already holds a dataset", "--overwrite"});
  o.overwrite = true;
  prepare_dataset(o);
  ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(std::filesystem::exists(out / "train_000099.bin"));
  o.val_fraction = 1.5;
  expect_error([&] { prepare_dataset(o); }, {"--val-fraction", "1.5"});
}

TEST(Prepare, CommandLine) {
  Corpus c;
  TempDir out;
  const std::string cmd = std::string(SERPENT_BINARY) + " prepare --tokenizer " + SERPENT_SOURCE_DIR +
                          "/data/tokenizers/gpt2/tokenizer.json --input " + (c.dir / "docs.jsonl") +
                          " --text-key body --val-fraction 0.1 --out " + out.path() + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string log;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) log.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << log;
  EXPECT_NE(log.find("3 broken lines skipped"), std::string::npos) << log;
  const auto m = nlohmann::json::parse(read_file(out / "manifest.json"));
  EXPECT_EQ(m["tokenizer"]["eot_id"], 50256);
  EXPECT_EQ(m["documents"]["train"].get<int>() + m["documents"]["val"].get<int>(), 41);
  EXPECT_EQ(m["tokenizer"]["sha256"],
            sha256_file(std::string(SERPENT_SOURCE_DIR) + "/data/tokenizers/gpt2/tokenizer.json"));
}

}  // namespace
}  // namespace serpent
