// `serpent prepare`: text in (data/text_source.h), token shards and manifest.json out.
//
// Every document is encoded and followed by the tokenizer's end-of-text id. Each document goes
// to val with probability val_fraction, decided by a counter-based draw on (seed, document
// number), so the split depends only on the inputs and the seed; worker threads encode in
// parallel and a single writer keeps document order, so the output is the same for any thread
// count. Train and val tokens are written as llm.c shards of shard_tokens tokens
// (train_000000.bin ..., val_000000.bin ...) and described in manifest.json (docs/DATA.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace serpent {

struct PrepareOptions {
  std::string tokenizer = "byte";  // "byte" or a tokenizer.json path
  std::vector<std::string> inputs;
  std::string out;
  double val_fraction = 0.01;
  int64_t shard_tokens = 100'000'000;
  uint64_t seed = 0;
  std::string text_key = "text";
  int threads = 0;         // 0: every core
  bool overwrite = false;  // replace shards and manifest already in `out`
  bool progress = true;    // progress bar on stderr
};

struct PrepareResult {
  int64_t documents_train = 0, documents_val = 0;
  int64_t tokens_train = 0, tokens_val = 0;
  int64_t broken_lines = 0;
  int64_t text_bytes = 0, text_bytes_val = 0;
  std::vector<std::string> shards;  // paths, train then val
  std::string manifest;             // path of manifest.json
};

PrepareResult prepare_dataset(const PrepareOptions& options);

}  // namespace serpent
