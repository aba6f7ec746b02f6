#include "train/commands.h"

namespace serpent {

int cmd_bench(const Args& args);
int cmd_export_hf(const Args& args);
int cmd_import_hf(const Args& args);
int cmd_inspect(const Args& args);

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"export-hf", "write a checkpoint as a Hugging Face MambaForCausalLM folder", cmd_export_hf},
      {"import-hf", "read a Hugging Face Mamba folder into a checkpoint", cmd_import_hf},
      {"inspect", "summarize a checkpoint", cmd_inspect},
      {"bench", "throughput and per-op timings of a model on the cpu or a GPU", cmd_bench},
  };
  return table;
}

}  // namespace serpent
