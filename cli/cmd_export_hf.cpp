// serpent export-hf: a checkpoint to a Hugging Face MambaForCausalLM folder.
#include <cstdio>
#include <filesystem>

#include "cli/args.h"
#include "io/hf.h"

namespace serpent {

int cmd_export_hf(const Args& args) {
  ArgParser p("export-hf",
              "Writes a checkpoint as a Hugging Face MambaForCausalLM folder: config.json, model.safetensors (f32, "
              "lm_head tied to the embedding) and the tokenizer.json the model was trained with.");
  p.option("checkpoint", "PATH", "serpent checkpoint (.h5) to export")
      .required()
      .option("out", "DIR", "output folder (created if missing; must be empty unless --overwrite)")
      .required()
      .option("overwrite", "", "write into --out even if it holds files (those of the same names are replaced)")
      .option("tokenizer", "PATH|byte|none",
              "tokenizer.json to ship; default: the data.tokenizer of the checkpoint's config");
  if (!p.parse(args)) return 0;
  const std::string out = p.get("out");
  std::error_code ec;
  SERPENT_CHECK(!std::filesystem::exists(out, ec) || std::filesystem::is_directory(out, ec), "--out ", out,
                " is a file; give a folder to write the model into");
  SERPENT_CHECK(p.flag("overwrite") || !std::filesystem::exists(out, ec) || std::filesystem::is_empty(out, ec),
                "--out ", out, " already holds files; pass --overwrite to write into it, or give a new folder");
  for (const std::string& note : export_hf(p.get("checkpoint"), out, p.has("tokenizer") ? p.get("tokenizer") : ""))
    std::fprintf(stderr, "export-hf: %s\n", note.c_str());
  std::printf("wrote %s/config.json and %s/model.safetensors\n", out.c_str(), out.c_str());
  return 0;
}

}  // namespace serpent
