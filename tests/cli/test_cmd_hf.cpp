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

}  // namespace
