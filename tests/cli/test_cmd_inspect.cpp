// `serpent inspect`: a checkpoint's summary (step, parameter count, optimizer state, tensors,
// config, train state, checksums verified), and the files it refuses (shards, dataset folders,
// other files).
#include <fstream>

#include "io/checkpoint.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(InspectCommand, SummarizesACheckpoint) {
  TempDir dir;
  Trained t;
  const std::string path = dir / "step_00000007.h5";
  save_checkpoint(path, t.checkpoint(7));
  ShellResult r = run_serpent_shell("inspect " + path + " --verify");
  EXPECT_EQ(r.code, 0) << r.output;
  // 16*8 embedding + 8 norm_f + 2 layers of (8 + 16*16 + 16 + 32*8 + 16*4 + 16 + 33*16 + 16 + 16 + 8*16).
  const int64_t expected = 16 * 8 + 8 + 2 * (8 + 256 + 16 + 256 + 64 + 16 + 528 + 16 + 16 + 128);
  ASSERT_EQ(t.model.num_parameters(), expected);
  for (const std::string& part :
       {std::string("step 7"), std::string("parameters: 2,744 in 22 tensors"), std::string("AdamW step 2"),
        std::string("backbone.layers.1.mixer.x_proj.weight"), std::string("[33, 16]"), std::string("d_model: 8"),
        std::string("best_val_loss = 3.25"), std::string("checksum verified")})
    EXPECT_NE(r.output.find(part), std::string::npos) << "missing '" << part << "' in\n" << r.output;
}

TEST(InspectCommand, SummarizesShardsAndDatasetsAndRefusesOtherFiles) {
  TempDir dir;
  {
    std::ofstream shard(dir / "train_000000.bin", std::ios::binary);
    int32_t header[256] = {20240520, 1, 3};
    shard.write(reinterpret_cast<const char*>(header), sizeof header);
    const uint16_t tokens[3] = {7, 2, 300};
    shard.write(reinterpret_cast<const char*>(tokens), sizeof tokens);
  }
  ShellResult r = run_serpent_shell("inspect " + dir / "train_000000.bin");
  EXPECT_EQ(r.code, 0) << r.output;
  for (const char* part : {"llm.c token shard, 3 tokens (uint16, magic 20240520 version 1)", "token ids: 2 to 300"})
    EXPECT_NE(r.output.find(part), std::string::npos) << part << " in " << r.output;
  r = run_serpent_shell("inspect " + dir.path());  // shards without a manifest
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("no manifest.json"), std::string::npos) << r.output;
  std::ofstream(dir / "notes.txt") << "plain text";
  r = run_serpent_shell("inspect " + dir / "notes.txt");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("not an HDF5 file"), std::string::npos) << r.output;
}

TEST(InspectCommand, ChecksADatasetAgainstItsManifest) {
  TempDir dir;
  Corpus c;
  ASSERT_EQ(run_serpent_shell("prepare --tokenizer byte --input " + c.dir / "docs.jsonl" + " --out " + dir / "ds" +
                              " --text-key body --shard-tokens 200 --val-fraction 0.2 --quiet")
                .code,
            0);
  ShellResult r = run_serpent_shell("inspect --verify " + dir / "ds");
  EXPECT_EQ(r.code, 0) << r.output;
  for (const char* part : {"serpent-dataset version 1", "tokenizer: byte (vocabulary 257, end-of-text 256)",
                           "train_000000.bin", "ok (size and sha256)", "every shard's size and sha256 match"})
    EXPECT_NE(r.output.find(part), std::string::npos) << part << " in " << r.output;
  // A damaged shard: same size, one byte changed. Without --verify only sizes are read.
  std::string bytes = read_text_file(dir / "ds/train_000001.bin");
  bytes[1030] ^= 1;
  write_file(dir / "ds/train_000001.bin", bytes);
  EXPECT_EQ(run_serpent_shell("inspect " + dir / "ds").code, 0);
  r = run_serpent_shell("inspect --verify " + dir / "ds");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("train_000001.bin"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("PROBLEM: its sha256 differs from the manifest's"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("error: " + dir / "ds" + ": 1 of "), std::string::npos) << r.output;
  // A truncated one is caught by its size alone.
  write_file(dir / "ds/train_000000.bin", read_text_file(dir / "ds/train_000000.bin").substr(0, 1100));
  r = run_serpent_shell("inspect " + dir / "ds");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("truncated or corrupt"), std::string::npos) << r.output;
}

}  // namespace
