// `serpent import-hf` and `serpent export-hf` end to end: a Hugging Face folder imported and
// exported again with the same tensors, and an unsupported model refused with one error line and
// no checkpoint written. The conversions themselves are in io/test_hf.cpp.
#include <filesystem>

#include "io/safetensors.h"
#include "tests/helpers.h"

namespace fs = std::filesystem;
using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(HfCommands, ImportAndExportRunEndToEnd) {
  TempDir tmp;
  Folder f(tmp, "hf");
  const std::string dir = f.write();
  ShellResult r = run_serpent_shell("import-hf --in " + dir + " --out " + tmp / "m.h5");
  EXPECT_EQ(r.code, 0) << r.output;
  r = run_serpent_shell("export-hf --checkpoint " + tmp / "m.h5" + " --out " + tmp / "again");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("no data.tokenizer"), std::string::npos) << r.output;
  SafetensorsReader exported(tmp / "again/model.safetensors");
  for (const auto& [name, t] : f.tensors)
    EXPECT_EQ(exported.read(name).to_vector<float>(), t.to_vector<float>()) << name;
  f.config["model_type"] = "mamba2";
  f.write();
  r = run_serpent_shell("import-hf --in " + dir + " --out " + tmp / "m2.h5");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("serpent import-hf: error:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("mamba2"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp / "m2.h5"));
}

TEST(HfCommands, OutputsAreNotOverwrittenWithoutOverwrite) {
  TempDir tmp;
  Folder f(tmp, "hf");
  const std::string dir = f.write();
  ASSERT_EQ(run_serpent_shell("import-hf --in " + dir + " --out " + tmp / "m.h5").code, 0);
  const std::string before = read_text_file(tmp / "m.h5");
  ShellResult r = run_serpent_shell("import-hf --in " + dir + " --out " + tmp / "m.h5");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("already exists; pass --overwrite"), std::string::npos) << r.output;
  EXPECT_EQ(read_text_file(tmp / "m.h5"), before);
  EXPECT_EQ(run_serpent_shell("import-hf --in " + dir + " --out " + tmp / "m.h5 --overwrite").code, 0);

  ASSERT_EQ(run_serpent_shell("export-hf --checkpoint " + tmp / "m.h5" + " --out " + tmp / "out").code, 0);
  write_file(tmp / "out/README.md", "mine");
  r = run_serpent_shell("export-hf --checkpoint " + tmp / "m.h5" + " --out " + tmp / "out");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("already holds files; pass --overwrite"), std::string::npos) << r.output;
  r = run_serpent_shell("export-hf --checkpoint " + tmp / "m.h5" + " --out " + tmp / "out --overwrite");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_text_file(tmp / "out/README.md"), "mine");
  fs::create_directories(tmp / "empty");
  EXPECT_EQ(run_serpent_shell("export-hf --checkpoint " + tmp / "m.h5" + " --out " + tmp / "empty").code, 0);
}

TEST(HfCommands, HugeSizesInConfigJsonEndCleanlyUnderAMemoryLimit) {
  // 10^9 layers made import-hf grow to 4.8 GB before; now the field is refused before anything
  // is read, well within 300 MB.
  TempDir tmp;
  Folder f(tmp, "hf");
  f.config["num_hidden_layers"] = 1000000000;
  const std::string dir = f.write();
  const ShellResult r =
      run_limited(300, std::string(SERPENT_BINARY) + " import-hf --in " + dir + " --out " + tmp / "m.h5" + " 2>&1");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("'num_hidden_layers' (model.n_layer) must be in [1, 1024], got 1000000000"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
}

TEST(HfCommands, NonFiniteWeightsAreRefused) {
  TempDir tmp;
  Folder f(tmp, "hf");
  f.tensors[1].second.data<float>()[3] = std::numeric_limits<float>::quiet_NaN();
  const std::string dir = f.write();
  const ShellResult r = run_serpent_shell("import-hf --in " + dir + " --out " + tmp / "m.h5");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("'" + f.tensors[1].first + "' holds 1 values that are NaN or infinite"), std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(tmp / "m.h5"));
}

}  // namespace
