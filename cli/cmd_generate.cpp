// serpent generate: continue a prompt with a checkpoint's model, one recurrent step per token
// (infer/sampling.h), printing the text as it is produced.
#include <chrono>
#include <cstdio>

#include "cli/args.h"
#include "core/threads.h"
#include "data/tokenizer.h"
#include "infer/inference.h"
#include "infer/sampling.h"

namespace serpent {

int cmd_generate(const Args& args) {
  ArgParser p("generate",
              "Continues --prompt with text sampled from a checkpoint's model and prints the prompt and the "
              "continuation as they are produced. Generation stops at the tokenizer's end-of-text or after "
              "--max-new-tokens. Each new token costs one recurrent step (conv window plus SSM state), on the cpu.");
  p.option("checkpoint", "PATH", "checkpoint (.h5) to sample from")
      .required()
      .option("prompt", "TEXT", "the text to continue")
      .required()
      .option("max-new-tokens", "N", "tokens to add at most", "256")
      .option("temperature", "T", "sampling temperature; 0 is greedy", "1.0")
      .option("top-k", "K", "keep only the K most likely tokens (0: all)", "0")
      .option("top-p", "P", "keep the most likely tokens whose probability reaches P (1: all)", "1.0")
      .option("seed", "S", "seed of the random draws (the same seed gives the same text)", "0")
      .option("tokenizer", "PATH|byte",
              "tokenizer to encode and decode with; default: the checkpoint config's "
              "data.tokenizer")
      .option("threads", "N",
              "cpu threads; one token at a time is too little work to share, so the default is 1 (0: "
              "OMP_NUM_THREADS, else the cores not busy)",
              "1");
  if (!p.parse(args)) return 0;
  use_threads(p.get_int("threads"));
  const std::string path = p.get("checkpoint");
  GenerateOptions opts;
  opts.max_new_tokens = p.get_int("max-new-tokens");
  SERPENT_CHECK(opts.max_new_tokens >= 0, "--max-new-tokens must be >= 0, got ", opts.max_new_tokens);
  opts.sampling.temperature = p.get_double("temperature");
  opts.sampling.top_k = p.get_int("top-k");
  opts.sampling.top_p = p.get_double("top-p");
  const int64_t seed = p.get_int("seed");
  SERPENT_CHECK(seed >= 0, "--seed must be >= 0, got ", seed);
  opts.sampling.seed = uint64_t(seed);
  validate(opts.sampling);
  const std::string prompt = p.get("prompt");
  SERPENT_CHECK(!prompt.empty(), "--prompt is empty; give some text to continue");

  const CheckpointModel m = load_checkpoint_model(path);
  const int64_t vocab = m.model->config().vocab_size;
  std::string tok_spec;
  if (p.has("tokenizer")) {
    tok_spec = p.get("tokenizer");
  } else {
    auto v = m.config_value("data", "tokenizer");
    SERPENT_CHECK(v, "checkpoint ", path,
                  " does not name its tokenizer (no data.tokenizer in its config); pass --tokenizer PATH|byte");
    tok_spec = *v;
  }
  const auto tok = load_tokenizer(tok_spec);
  SERPENT_CHECK(tok->vocab_size() <= vocab, "tokenizer ", tok->name(), " has ", tok->vocab_size(),
                " ids but the model of ", path, " only ", vocab, "; pass the tokenizer it was trained with");
  opts.stop_token = tok->eot_id();

  std::vector<int64_t> ids;
  for (int32_t id : tok->encode(prompt)) ids.push_back(id);
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  std::fflush(stdout);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int64_t> out = generate(*m.model, ids, opts, [&](int64_t token) {
    const std::string piece = tok->decode_bytes({int32_t(token)});
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputc('\n', stdout);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "generate: %zu prompt tokens, %zu new tokens in %.2f s (%.1f tokens/s)\n", ids.size(),
               out.size(), seconds, double(out.size()) / std::max(seconds, 1e-9));
  return 0;
}

}  // namespace serpent
