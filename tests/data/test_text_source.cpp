// Text sources (data/text_source.h): folders of .txt files and JSONL files, plain and gzipped,
// skipping broken lines with a warning; a damaged gzip file is an error naming it.
#include <fstream>
#include <iterator>

#include "core/rng.h"
#include "data/text_source.h"
#include "tests/helpers.h"

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

}  // namespace
}  // namespace serpent
