// serpent export-hf: a checkpoint to a Hugging Face MambaForCausalLM folder.
#include <cstdio>

#include "cli/args.h"
#include "io/hf.h"

namespace serpent {

int cmd_export_hf(const Args& args) {
  ArgParser p("export-hf",
              "Writes a checkpoint as a Hugging Face MambaForCausalLM folder: config.json, model.safetensors (f32, "
              "lm_head tied to the embedding) and the tokenizer.json the model was trained with.");
  p.option("checkpoint", "PATH", "serpent checkpoint (.h5) to export")
      .option("out", "DIR", "output folder (created if missing; files in it are overwritten)")
      .option("tokenizer", "PATH|byte|none",
              "tokenizer.json to ship; default: the data.tokenizer of the checkpoint's config");
  if (!p.parse(args)) return 0;
  const std::string out = p.get("out");
  for (const std::string& note : export_hf(p.get("checkpoint"), out, p.has("tokenizer") ? p.get("tokenizer") : ""))
    std::fprintf(stderr, "export-hf: %s\n", note.c_str());
  std::printf("wrote %s/config.json and %s/model.safetensors\n", out.c_str(), out.c_str());
  return 0;
}

}  // namespace serpent
