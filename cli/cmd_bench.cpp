// serpent bench: throughput of a training step, per-op-family timings, and the scan kernel.
#include <cstdio>

#include "cli/bench.h"
#include "core/threads.h"
#include "dist/dist_env.h"
#include "train/config.h"

namespace serpent {

namespace {

std::vector<int64_t> parse_ints(const std::string& text, size_t count, const char* what) {
  std::vector<int64_t> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    try {
      out.push_back(std::stoll(text.substr(pos, comma - pos)));
    } catch (const std::exception&) {
      fail("bench: ", what, " expects ", count, " comma-separated integers, got '", text, "'");
    }
    pos = comma + 1;
  }
  SERPENT_CHECK(out.size() == count, "bench: ", what, " expects ", count, " comma-separated integers, got '", text,
                "'");
  return out;
}

}  // namespace

int cmd_bench(const Args& args) {
  if (!args.empty() && args[0] == "scan") {
    ArgParser p("bench scan", "Times the selective scan kernel alone on a GPU (forward, forward + backward).");
    p.option("shape", "B,E,L,N", "batch, d_inner, sequence length, d_state", "8,1536,2048,16")
        .option("device", "DEV", "cuda:N", "cuda:0")
        .option("steps", "N", "timed repetitions", "20")
        .option("warmup", "N", "untimed repetitions first", "3")
        .option("seed", "N", "random seed", "0");
    if (!p.parse(Args(args.begin() + 1, args.end()))) return 0;
    const std::vector<int64_t> s = parse_ints(p.get("shape"), 4, "--shape B,E,L,N");
    return bench_scan(s[0], s[1], s[2], s[3], Device::parse(p.get("device")), p.get_int("steps"), p.get_int("warmup"),
                      uint64_t(p.get_int("seed")));
  }
  ArgParser p("bench",
              "Times full training steps (forward, backward, gradient norm, AdamW) of a Mamba language model on\n"
              "random tokens: tokens/s, and on a GPU also MFU, peak memory and, with --breakdown, the time per op\n"
              "family; with --forward, the evaluation forward pass instead. The model comes from --config (its\n"
              "model section) or from the size options.\n"
              "`serpent bench scan --help` times the selective scan kernel alone.");
  p.option("config", "YAML", "take the model (and batch, sequence length, device, dtype) from a config")
      .option("device", "DEV", "cpu or cuda:N (default cpu, or the config's)")
      .option("dtype", "T", "f32, or bf16 for mixed precision on a GPU (default f32, or the config's)")
      .option("d-model", "N", "model width", "256")
      .option("n-layer", "N", "number of layers", "4")
      .option("vocab", "N", "vocabulary size", "256")
      .option("batch", "N", "sequences per step (default 8, or the config's micro_batch_size)")
      .option("seq-len", "N", "tokens per sequence (default 256, or the config's seq_len)")
      .option("steps", "N", "timed steps", "5")
      .option("warmup", "N", "untimed steps first", "1")
      .option("seed", "N", "random seed", "0")
      .option("breakdown", "", "also time each op family at this workload's shapes (GPU)")
      .option("forward", "",
              "time the forward pass alone, as serpent eval runs it (the loss, no graph recorded), instead of a "
              "training step")
      .option("dist", "BACKEND",
              "keep the gradients in data-parallel buckets reduced by this communicator (local, nccl or mpi) at the "
              "launcher's world size (1 without one): compare with a run without --dist for the cost of data "
              "parallelism")
      .option("bucket-mb", "MB", "gradient bucket size with --dist", "25")
      .option("recompute", "MODE", "none or full, as train.recompute (default none, or the config's)")
      .option("state-dtype", "T", "f32 or bf16 AdamW moments, as optim.state_dtype (default f32, or the config's)")
      .option("threads", "N", "cpu threads (0: OMP_NUM_THREADS, else the cores not busy)", "0");
  if (!p.parse(args)) return 0;
  ModelBench b;
  std::string device = "cpu", dtype = "f32", recompute = "none", state_dtype = "f32";
  b.batch = 8;
  b.seq_len = 256;
  if (p.has("config")) {
    const Config cfg = Config::load(p.get("config"));
    b.model = cfg.model;
    b.batch = cfg.data.micro_batch_size;
    b.seq_len = cfg.data.seq_len;
    device = cfg.train.device;
    dtype = cfg.train.dtype;
    recompute = cfg.train.recompute;
    state_dtype = cfg.optim.state_dtype;
  } else {
    b.model.d_model = p.get_int("d-model");
    b.model.n_layer = p.get_int("n-layer");
    b.model.vocab_size = p.get_int("vocab");
    b.model.validate();
  }
  if (p.has("batch")) b.batch = p.get_int("batch");
  if (p.has("seq-len")) b.seq_len = p.get_int("seq-len");
  if (p.has("device")) device = p.get("device");
  if (p.has("dtype")) dtype = p.get("dtype");
  if (p.has("recompute")) recompute = p.get("recompute");
  if (p.has("state-dtype")) state_dtype = p.get("state-dtype");
  SERPENT_CHECK(recompute == "none" || recompute == "full", "bench: --recompute must be none or full, got ", recompute);
  SERPENT_CHECK(state_dtype == "f32" || state_dtype == "bf16", "bench: --state-dtype must be f32 or bf16, got ",
                state_dtype);
  b.recompute_blocks = recompute == "full";
  b.bf16_moments = state_dtype == "bf16";
  b.device = Device::parse(device);
  b.compute_dtype = dtype_from_name(dtype);
  SERPENT_CHECK(b.compute_dtype == DType::f32 || b.compute_dtype == DType::bf16,
                "bench: --dtype must be f32 or bf16, got ", dtype);
  b.steps = p.get_int("steps");
  b.warmup = p.get_int("warmup");
  b.seed = p.get_int("seed");
  b.breakdown = p.flag("breakdown");
  b.forward_only = p.flag("forward");
  SERPENT_CHECK(!(b.forward_only && (b.breakdown || p.has("dist"))),
                "bench: --forward times the evaluation forward alone; it takes neither --breakdown nor --dist");
  if (p.has("dist")) {
    b.dist = p.get("dist");
    // Under a launcher each rank times its own GPU, as the trainer places them.
    const DistEnv env = dist_env_from_process();
    if (b.device.is_cuda() && env.distributed()) b.device = Device::cuda(env.local_rank);
  }
  b.bucket_mb = p.get_double("bucket-mb");
  use_threads(p.get_int("threads"));
  return bench_model(b);
}

}  // namespace serpent
