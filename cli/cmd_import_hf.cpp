// serpent import-hf: a Hugging Face Mamba folder to a serpent checkpoint (model only).
#include <cstdio>
#include <filesystem>

#include "cli/args.h"
#include "io/hf.h"

namespace serpent {

int cmd_import_hf(const Args& args) {
  ArgParser p("import-hf",
              "Reads a Hugging Face Mamba-1 folder (config.json of transformers or of the reference implementation; "
              "model.safetensors or shards listed in model.safetensors.index.json; F32, BF16 or F16 tensors) into a "
              "serpent checkpoint holding the model (f32) and its config.");
  p.option("in", "DIR", "Hugging Face model folder")
      .required()
      .option("out", "PATH", "checkpoint (.h5) to write")
      .required()
      .option("overwrite", "", "replace --out if it exists (a training checkpoint's optimizer state is then lost)");
  if (!p.parse(args)) return 0;
  const std::string out = p.get("out");
  std::error_code ec;
  SERPENT_CHECK(!std::filesystem::is_directory(out, ec), "--out ", out,
                " is a folder; give the checkpoint file to write");
  SERPENT_CHECK(
      p.flag("overwrite") || !std::filesystem::exists(out, ec), "--out ", out,
      " already exists; pass --overwrite to replace it (a training checkpoint would lose its optimizer state)");
  import_hf(p.get("in"), out);
  std::printf("wrote %s\n", p.get("out").c_str());
  return 0;
}

}  // namespace serpent
