// Text sources (data/text_source.h): folders of .txt files and JSONL files, plain and gzipped,
// skipping broken lines with a warning; a damaged gzip file is an error naming it.
#include <fstream>
#include <iterator>

#include "core/rng.h"
#include "data/text_source.h"
#include "tests/helpers.h"

#if __has_include(<zstd.h>)
#include <zstd.h>
#define SERPENT_TEST_ZSTD 1
#endif

namespace serpent {
namespace {

using testing::Corpus;
using testing::expect_error;
using testing::TempDir;
using testing::write_file;
using testing::write_gz;

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
  write_file(dir / "cut.jsonl.gz", gz.substr(0, gz.size() / 2));
  DocumentReader r({dir / "cut.jsonl.gz"}, "text");
  std::string text;
  expect_error(
      [&] {
        while (r.next(text)) {
        }
      },
      {"cut.jsonl.gz", "damaged or truncated"});
}

TEST(TextSource, AGzNameThatIsNotGzipIsRefused) {
  TempDir dir;
  write_file(dir / "plain.jsonl.gz", "{\"text\": \"not compressed\"}\n");
  DocumentReader r({dir / "plain.jsonl.gz"}, "text");
  std::string text;
  expect_error([&] { r.next(text); }, {"plain.jsonl.gz", "is not gzip data"});
  expect_error([&] { read_file(dir / "plain.jsonl.gz"); }, {"plain.jsonl.gz", "is not gzip data"});
}

TEST(TextSource, ReadsZstdJsonlAndCountsTheTextItGives) {
#ifndef SERPENT_TEST_ZSTD
  GTEST_SKIP() << "no zstd.h here: the .jsonl.zst reader is tested where libzstd-dev is installed";
#else
  if (!have_zstd()) GTEST_SKIP() << "this build of serpent has no zstd support (libzstd-dev was missing at configure)";
  TempDir dir;
  std::string jl;
  for (int i = 0; i < 5000; ++i) jl += "{\"text\": \"document " + std::to_string(i) + " of the Pile\"}\n";
  std::string z(ZSTD_compressBound(jl.size()), '\0');
  z.resize(ZSTD_compress(z.data(), z.size(), jl.data(), jl.size(), 3));
  write_file(dir / "pile.jsonl.zst", z);
  DocumentReader r({dir / "pile.jsonl.zst"}, "text");
  std::string text;
  int n = 0;
  while (r.next(text)) EXPECT_EQ(text, "document " + std::to_string(n++) + " of the Pile");
  EXPECT_EQ(n, 5000);
  EXPECT_EQ(r.text_bytes_done(), jl.size()) << "progress counts the text, not the compressed bytes";
  EXPECT_LT(r.bytes_total(), jl.size());
  // Cut short, or not zstd at all: errors naming the file.
  write_file(dir / "cut.jsonl.zst", z.substr(0, z.size() / 2));
  DocumentReader cut({dir / "cut.jsonl.zst"}, "text");
  expect_error(
      [&] {
        while (cut.next(text)) {
        }
      },
      {"cut.jsonl.zst", "damaged or truncated"});
  write_file(dir / "plain.jsonl.zst", jl);
  DocumentReader plain({dir / "plain.jsonl.zst"}, "text");
  expect_error([&] { plain.next(text); }, {"plain.jsonl.zst", "is not zstd data"});
#endif
}

TEST(TextSource, InputsItDoesNotUnderstandAreRefusedByName) {
  TempDir dir;
  write_file(dir / "data.json.gz", "\x1f\x8b whatever");
  write_file(dir / "table.parquet", "PAR1....");
  write_file(dir / "model.bin", std::string("\x00\x01\x02", 3));
  write_file(dir / "NOTES", std::string("some\0binary", 11));
  write_file(dir / "README", "plain text without an extension\n");
  write_file(dir / "fake.txt", std::string("text\0with a NUL", 15));
  for (const char* name : {"data.json.gz", "table.parquet", "model.bin", "NOTES"})
    expect_error([&] { DocumentReader r({dir / name}, "text"); },
                 {"input '" + (dir / name) + "' is not a kind of file serpent prepare reads", ".jsonl.zst"});
  expect_error([&] { DocumentReader r({dir / "fake.txt"}, "text"); }, {"fake.txt", "holds binary data"});
  DocumentReader ok({dir / "README"}, "text");
  std::string text;
  ASSERT_TRUE(ok.next(text));
  EXPECT_EQ(text, "plain text without an extension\n");
}

}  // namespace
}  // namespace serpent
