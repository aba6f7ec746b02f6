// A new user's journey on the cpu with real text, each step checking its output, not only its
// exit code: prepare a .jsonl.zst corpus -> inspect --verify the dataset -> train the tiny model
// a few steps -> export-hf -> import-hf -> fine-tune from the import with configs/tiny.yaml's
// model unchanged (train.init_from) -> eval with bits per byte -> generate.
#include <cmath>
#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "tests/helpers.h"
#include "train/metrics.h"

#if __has_include(<zstd.h>)
#include <zstd.h>
#define SERPENT_TEST_ZSTD 1
#endif

#include "data/compressed_file.h"

using namespace serpent;
using namespace serpent::testing;

TEST(Journey, PrepareInspectTrainExportImportFineTuneEvalGenerate) {
#ifndef SERPENT_TEST_ZSTD
  GTEST_SKIP() << "no zstd.h here: the journey starts from a .jsonl.zst corpus (install libzstd-dev)";
#else
  if (!have_zstd()) GTEST_SKIP() << "this build of serpent has no zstd support (libzstd-dev was missing at configure)";
  TempDir dir;
  // The corpus: the paragraphs of a chapter of Pride and Prejudice, one JSONL document each.
  const std::string chapter = read_text_file(data_path("pride_and_prejudice_ch1.txt"));
  std::string jl;
  int docs = 0;
  for (size_t at = 0; at < chapter.size();) {
    size_t end = chapter.find("\n\n", at);
    if (end == std::string::npos) end = chapter.size();
    if (end > at) jl += nlohmann::json{{"text", chapter.substr(at, end - at)}}.dump() + "\n", ++docs;
    at = end + 2;
  }
  std::string z(ZSTD_compressBound(jl.size()), '\0');
  z.resize(ZSTD_compress(z.data(), z.size(), jl.data(), jl.size(), 3));
  write_file(dir / "corpus.jsonl.zst", z);
  const std::string bin = std::string(SERPENT_BINARY) + " ";
  auto run = [&](const std::string& args) {
    const ShellResult r = run_shell("cd " + dir.path() + " && " + bin + args + " 2>&1");
    EXPECT_EQ(r.code, 0) << args << "\n" << r.output;
    return r.output;
  };

  // 1. prepare
  run("prepare --tokenizer byte --input corpus.jsonl.zst --out ds --val-fraction 0.2 --quiet");
  const nlohmann::json m = nlohmann::json::parse(read_text_file(dir / "ds/manifest.json"));
  EXPECT_EQ(m["documents"]["train"].get<int>() + m["documents"]["val"].get<int>(), docs);
  EXPECT_EQ(m["bytes"]["train"].get<int64_t>() + m["bytes"]["val"].get<int64_t>(), m["text_bytes"].get<int64_t>());

  // 2. inspect --verify
  const std::string inspected = run("inspect --verify ds");
  EXPECT_NE(inspected.find("every shard's size and sha256 match the manifest"), std::string::npos) << inspected;

  // 3. train the tiny model a few steps (its config, data and step count set on the command line)
  const std::string tiny = source_path("configs/tiny.yaml");
  const std::string common =
      " --set data.path=ds --set log.runs_dir=runs --set data.seq_len=64 "
      "--set data.global_batch_tokens=512 --set optim.warmup_steps=2 --set eval.batches=2 ";
  run("train " + tiny + common + "--set train.name=first --set train.max_steps=8 --set eval.every=4");
  const std::string first = checkpoint_path(dir / "runs/first/checkpoints", 8);
  const std::vector<MetricsRecord> first_metrics = read_metrics(dir / "runs/first/metrics.jsonl");
  ASSERT_FALSE(first_metrics.empty());
  EXPECT_LT(first_metrics.back().loss, std::log(257.0));

  // 4. export-hf, 5. import-hf
  run("export-hf --checkpoint " + first + " --out hf");
  const nlohmann::json cfg = nlohmann::json::parse(read_text_file(dir / "hf/config.json"));
  EXPECT_EQ(cfg["vocab_size"], 264);  // padded
  EXPECT_TRUE(std::filesystem::exists(dir / "hf/tokenizer.json"));
  run("import-hf --in hf --out imported.h5");
  expect_same_tensors(load_checkpoint(dir / "imported.h5").model, load_checkpoint(first).model);

  // 6. fine-tune from the import: tiny.yaml's model section as it is (vocab 257, dt_rank auto)
  const std::string tuned_log =
      run("train " + tiny + common + "--set train.name=tuned --set train.max_steps=4 --set eval.every=0 " +
          "--set train.init_from=imported.h5");
  EXPECT_NE(tuned_log.find("the weights come from imported.h5"), std::string::npos) << tuned_log;
  const std::vector<MetricsRecord> tuned = read_metrics(dir / "runs/tuned/metrics.jsonl");
  ASSERT_FALSE(tuned.empty());
  EXPECT_LT(tuned.front().loss, first_metrics.front().loss) << "it starts from trained weights, not from scratch";
  const std::string last = checkpoint_path(dir / "runs/tuned/checkpoints", 4);

  // 7. eval, with bits per byte
  const std::string ev = run("eval --checkpoint " + last + " --json");
  const nlohmann::json e = nlohmann::json::parse(ev.substr(ev.find('{'), ev.find('}') - ev.find('{') + 1));
  const double tokens = m["tokens"]["val"], bytes = m["bytes"]["val"];
  EXPECT_NEAR(e["bits_per_byte"].get<double>(), e["loss"].get<double>() * tokens / bytes / std::log(2.0), 1e-9);
  EXPECT_LT(e["loss"].get<double>(), std::log(257.0));

  // 8. generate
  const std::string text = run("generate --checkpoint " + last + " --prompt \"It is a truth\" --max-new-tokens 40 " +
                               "--seed 3 --temperature 0.8");
  EXPECT_EQ(text.rfind("It is a truth", 0), 0u) << text;
  EXPECT_NE(text.find("40 new tokens"), std::string::npos) << text;
#endif
}
