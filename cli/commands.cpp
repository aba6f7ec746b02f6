#include "cli/commands.h"

namespace serpent {

int cmd_bench(const Args& args);
int cmd_eval(const Args& args);
int cmd_export_hf(const Args& args);
int cmd_generate(const Args& args);
int cmd_import_hf(const Args& args);
int cmd_inspect(const Args& args);
int cmd_prepare(const Args& args);
int cmd_tokenize(const Args& args);
int cmd_train(const Args& args);

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"train", "train a model from a YAML config, with checkpoints and exact resume", cmd_train},
      {"eval", "validation loss and perplexity of a checkpoint over a whole val split", cmd_eval},
      {"generate", "continue a prompt with text sampled from a checkpoint", cmd_generate},
      {"prepare", "tokenize text files, folders and JSONL into llm.c token shards", cmd_prepare},
      {"tokenize", "text on stdin to token ids as JSON, or back with --decode", cmd_tokenize},
      {"export-hf", "write a checkpoint as a Hugging Face MambaForCausalLM folder", cmd_export_hf},
      {"import-hf", "read a Hugging Face Mamba folder into a checkpoint", cmd_import_hf},
      {"inspect", "summarize a checkpoint", cmd_inspect},
      {"bench", "throughput and per-op timings of a model on the cpu or a GPU", cmd_bench},
  };
  return table;
}

}  // namespace serpent
