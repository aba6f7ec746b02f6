// serpent import-hf: a Hugging Face Mamba folder to a serpent checkpoint (model only).
#include <cstdio>

#include "cli/args.h"
#include "io/hf.h"

namespace serpent {

int cmd_import_hf(const Args& args) {
  ArgParser p("import-hf",
              "Reads a Hugging Face Mamba-1 folder (config.json of transformers or of the reference implementation; "
              "model.safetensors or shards listed in model.safetensors.index.json; F32, BF16 or F16 tensors) into a "
              "serpent checkpoint holding the model (f32) and its config.");
  p.option("in", "DIR", "Hugging Face model folder").option("out", "PATH", "checkpoint (.h5) to write");
  if (!p.parse(args)) return 0;
  import_hf(p.get("in"), p.get("out"));
  std::printf("wrote %s\n", p.get("out").c_str());
  return 0;
}

}  // namespace serpent
