// serpent prepare: text files, folders and JSONL -> llm.c token shards + manifest.json.
#include "cli/args.h"
#include "data/prepare.h"

namespace serpent {

int cmd_prepare(const Args& args) {
  ArgParser p("prepare",
              "Tokenizes documents (.txt files, folders of them, .jsonl / .jsonl.gz lines) into train and val token "
              "shards in llm.c's format, each document followed by end-of-text, plus manifest.json (docs/DATA.md).");
  p.option("tokenizer", "PATH|byte", "a tokenizer.json file (or a folder holding one), or \"byte\"")
      .required()
      .multi_option("input", "PATH", "text files, folders and .jsonl / .jsonl.gz files")
      .required()
      .option("out", "DIR", "output folder")
      .required()
      .option("val-fraction", "F", "probability that a document goes to val", "0.01")
      .option("shard-tokens", "N", "tokens per shard", "100000000")
      .option("seed", "S", "seed of the train/val split", "0")
      .option("text-key", "KEY", "the JSONL member holding the text", "text")
      .option("threads", "N", "encoding threads (0: every core)", "0")
      .option("overwrite", "", "replace a dataset already in --out")
      .option("quiet", "", "no progress bar");
  if (!p.parse(args)) return 0;
  PrepareOptions o;
  o.tokenizer = p.get("tokenizer");
  o.inputs = p.get_all("input");
  o.out = p.get("out");
  o.val_fraction = p.get_double("val-fraction");
  o.shard_tokens = p.get_int("shard-tokens");
  o.seed = uint64_t(p.get_int("seed"));
  o.text_key = p.get("text-key");
  o.threads = int(p.get_int("threads"));
  o.overwrite = p.flag("overwrite");
  o.progress = !p.flag("quiet");
  prepare_dataset(o);
  return 0;
}

}  // namespace serpent
