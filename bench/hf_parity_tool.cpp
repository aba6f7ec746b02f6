// The C++ half of tools/hf_parity.py (the parity check against transformers, docs/INTEROP.md):
//   hf_parity_tool train --text FILE --out CKPT [...]
//       a small byte-level MambaLM trained a few AdamW steps on FILE, saved as a full checkpoint;
//   hf_parity_tool dump --checkpoint CKPT --tokens TOKENS.safetensors --out DUMP.safetensors
//       on the tokens (I64, (B, L+1)): our CPU logits, loss and every parameter gradient, in f32.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "autograd/engine.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "cli/args.h"
#include "core/creation.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "layers/mamba.h"
#include "layers/mamba_config_yaml.h"
#include "optim/adamw.h"

using namespace serpent;

namespace {

// Inputs (B, L) and next-token targets (B, L) of a (B, L+1) block of ids.
std::pair<Tensor, Tensor> split_inputs(const std::vector<int64_t>& ids, int64_t B, int64_t L1) {
  const int64_t L = L1 - 1;
  std::vector<int64_t> x, y;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t) {
      x.push_back(ids[size_t(b * L1 + t)]);
      y.push_back(ids[size_t(b * L1 + t + 1)]);
    }
  return {from_vector(x, {B, L}), from_vector(y, {B, L})};
}

int train(const Args& args) {
  ArgParser p("train", "Trains a small byte-level MambaLM for a few AdamW steps and saves a checkpoint.");
  p.option("text", "FILE", "training text (its bytes are the tokens)")
      .option("out", "CKPT", "checkpoint to write")
      .option("d-model", "N", "model width", "64")
      .option("n-layer", "N", "layers", "2")
      .option("d-state", "N", "SSM state size", "16")
      .option("steps", "N", "AdamW steps", "8")
      .option("batch", "N", "sequences per step", "4")
      .option("seq-len", "N", "tokens per sequence", "64")
      .option("lr", "X", "learning rate", "3e-3")
      .option("train-bytes", "N", "sample training windows from the first N bytes only (0: all)", "0")
      .option("seed", "N", "seed of the initialization and of the batch sampling", "0");
  if (!p.parse(args)) return 0;
  std::ifstream in(p.get("text"), std::ios::binary);
  SERPENT_CHECK(in.good(), "cannot open ", p.get("text"));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  MambaConfig cfg;
  cfg.d_model = p.get_int("d-model");
  cfg.n_layer = p.get_int("n-layer");
  cfg.d_state = p.get_int("d-state");
  cfg.vocab_size = 256;
  const int64_t B = p.get_int("batch"), L = p.get_int("seq-len"), steps = p.get_int("steps");
  const int64_t limit = p.get_int("train-bytes");
  const int64_t usable = limit > 0 ? std::min<int64_t>(limit, int64_t(text.size())) : int64_t(text.size());
  SERPENT_CHECK(usable > L + 1, p.get("text"), ": ", usable, " bytes to train on, fewer than one window of ", L + 1);

  Generator gen(uint64_t(p.get_int("seed")));
  MambaLM model(cfg, gen);
  AdamW opt(model.named_parameters(), AdamWConfig{});
  for (int64_t s = 0; s < steps; ++s) {
    std::vector<int64_t> ids;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t start = int64_t(gen.uniform() * double(usable - L - 1));
      for (int64_t t = 0; t <= L; ++t) ids.push_back(uint8_t(text[size_t(start + t)]));
    }
    auto [x, y] = split_inputs(ids, B, L + 1);
    model.zero_grad();
    Tensor loss = model.loss(x, y);
    autograd::backward(loss);
    opt.step(p.get_double("lr"), clip_scale(grad_norm(model.parameters()), 1.0));
    std::fprintf(stderr, "step %lld: loss %.4f\n", (long long)s + 1, loss.item());
  }
  Checkpoint c;
  c.config_yaml = str_cat("# hf_parity_tool train: ", steps, " AdamW steps on ", p.get("text"), "\n",
                          mamba_config_yaml_text(cfg), "data:\n  tokenizer: byte\n");
  c.model = model.named_parameters();
  c.optim = opt.state();
  c.optim_step = opt.steps();
  c.train.step = steps;
  c.train.tokens_seen = steps * B * L;
  c.train.rng_seed = gen.seed;
  c.train.rng_offset = gen.offset;
  save_checkpoint(p.get("out"), c);
  std::printf("wrote %s\n", p.get("out").c_str());
  return 0;
}

int dump(const Args& args) {
  ArgParser p("dump", "Writes our f32 logits, loss and parameter gradients on given tokens to a safetensors file.");
  p.option("checkpoint", "CKPT", "checkpoint to evaluate")
      .option("tokens", "FILE", "safetensors file with 'tokens', I64 (B, L+1)")
      .option("out", "FILE", "safetensors file to write")
      .option("device", "DEV", "cpu or cuda:N: where the forward and backward run (in f32)", "cpu");
  if (!p.parse(args)) return 0;
  const Checkpoint c = load_checkpoint(p.get("checkpoint"), CheckpointParts::model_only);
  const MambaConfig cfg = mamba_config_from_config_text(c.config_yaml, "checkpoint " + p.get("checkpoint"));
  Generator gen(0);
  MambaLM model(cfg, gen);
  model.load_state_dict(c.model);
  const Device device = Device::parse(p.get("device"));
  model.to(device);

  const Tensor tokens = SafetensorsReader(p.get("tokens")).read("tokens");
  SERPENT_CHECK(tokens.dim() == 2 && tokens.size(1) >= 2, p.get("tokens"), ": 'tokens' must be (B, L+1), got ",
                tokens.str());
  auto [x, y] = split_inputs(tokens.to_vector<int64_t>(), tokens.size(0), tokens.size(1));
  x = x.to(device);
  y = y.to(device);
  model.zero_grad();
  Tensor logits;
  {
    autograd::NoGradGuard no_grad;
    logits = model.forward(x).to(Device::cpu());  // (B, L, V)
  }
  const Tensor loss = model.loss(x, y);
  autograd::backward(loss);

  NamedTensors out = {{"tokens", tokens}, {"logits", logits}, {"loss", loss.detach().to(Device::cpu())}};
  for (const auto& [name, param] : model.named_parameters())
    out.emplace_back("grad." + name, param.grad().to(Device::cpu()));
  write_safetensors(p.get("out"), out, {{"checkpoint", p.get("checkpoint")}, {"config", c.config_yaml}});
  std::printf("loss %.8f on %lld x %lld tokens; wrote %s\n", loss.item(), (long long)x.size(0), (long long)x.size(1),
              p.get("out").c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  const Args args(argv + std::min(argc, 2), argv + argc);
  try {
    if (cmd == "train") return train(args);
    if (cmd == "dump") return dump(args);
    std::fprintf(stderr, "usage: hf_parity_tool train|dump [options] (--help for each)\n");
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "hf_parity_tool %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
