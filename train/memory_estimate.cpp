#include "train/memory_estimate.h"

#include <algorithm>

#include "core/memory.h"

namespace serpent {

MemoryEstimate estimate_training_memory(const Config& cfg, Device device, int world_size) {
  const MambaConfig& m = cfg.model;
  const int64_t P = m.num_parameters();
  const int64_t D = m.d_model, E = m.d_inner(), N = m.d_state, R = m.resolved_dt_rank();
  const int64_t V = m.padded_vocab(), tokens_per_seq = cfg.data.seq_len;
  const bool gpu = device.is_cuda();
  const int64_t w = cfg.train.dtype == "f64" ? 8 : 4;   // parameter element
  const int64_t a = cfg.train.dtype == "bf16" ? 2 : w;  // activation element
  MemoryEstimate e;
  e.weights = P * w + (cfg.train.dtype == "bf16" ? P * 2 : 0);
  // The gradients are alive at the forward's peak when they sit in data-parallel buckets (several
  // ranks, ZeRO-1, or an NCCL/MPI job) or when an earlier micro-batch of the step made them; a
  // single local process with one micro-batch per step makes them during backward only, as the
  // activations are freed, so they do not add to the peak (train/data_parallel.h).
  const int64_t micro_tokens = cfg.data.micro_batch_size * cfg.data.seq_len * std::max(1, world_size);
  const bool accumulates = micro_tokens > 0 && cfg.data.global_batch_tokens > micro_tokens;
  const bool buckets = world_size > 1 || cfg.dist.zero1 || cfg.dist.backend == "nccl" || cfg.dist.backend == "mpi";
  e.gradients = buckets || accumulates ? P * w : 0;
  const int64_t moment = cfg.optim.state_dtype == "bf16" ? 2 : w;
  e.optimizer = 2 * P * moment / (cfg.dist.zero1 ? world_size : 1);
  // Kept per token: per layer the f32 residual and the norm output (D each), x, z, u and y (E
  // each; delta is computed again in the scan's backward), dt_low, B and C, and on a GPU the
  // scan's state checkpoints (one every 32 steps for d_state <= 16, more often above); then the
  // final residual and norm. The mixer outputs and the embedding output are not kept: no
  // backward reads them (autograd keeps edges only).
  const int64_t segment = N <= 16 ? 32 : std::max<int64_t>(1, 128 / ((N + 3) / 4));
  const int64_t per_layer = 4 * D + a * D + 4 * a * E + a * (R + 2 * N) + (gpu ? 4 * E * N / segment : 0);
  // train.recompute full: a block keeps its two inputs only (h and the f32 residual), and its
  // backward holds the recomputed activations of that one block besides the gradients.
  const bool full = cfg.train.recompute == "full";
  const int64_t kept_per_layer = full ? a * D + 4 * D : per_layer;
  const int64_t per_token = m.n_layer * kept_per_layer + a * D + 4 * D;
  // Backward's working set: one layer's activation gradients (about as much as it keeps).
  const int64_t backward_per_token = full ? 2 * per_layer : per_layer;
  e.per_sequence = tokens_per_seq * (per_token + backward_per_token);
  const int64_t tokens = cfg.data.micro_batch_size * tokens_per_seq;
  e.activations = tokens * per_token;
  const int64_t chunk_logits = std::min(tokens * V, gpu ? int64_t(1) << 28 : int64_t(1) << 22);
  // A background save copies the weights and moments to the host while training goes on.
  e.snapshot = cfg.checkpoint.async && !gpu ? P * w + e.optimizer : 0;
  e.transient = tokens * backward_per_token + chunk_logits * 4 + V * D * 4;  // + the lm_head's gradient buffer
  return e;
}

void check_training_memory(const Config& cfg, Device device, int world_size) {
  if (device.is_cuda()) {
    // The model is initialized on the cpu, then moved.
    const int64_t init = cfg.model.num_parameters() * 4;
    const MemoryBudget host = memory_budget(Device::cpu());
    SERPENT_CHECK(init <= host.bytes, "the model's ", with_commas(cfg.model.num_parameters()),
                  " parameters are initialized on the cpu first and need ", bytes_text(init), ", but the cpu has ",
                  bytes_text(host.bytes), " free (", host.limit,
                  "); use a smaller model (model.d_model, model.n_layer)");
  }
  const MemoryEstimate e = estimate_training_memory(cfg, device, world_size);
  const MemoryBudget budget = memory_budget(device);
  if (e.total() <= budget.bytes) return;
  const int64_t fixed = e.weights + e.gradients + e.optimizer + e.snapshot;
  // bf16 moments would free half of the moments' bytes (f32 weights only).
  const int64_t state_saving = cfg.optim.state_dtype == "f32" && cfg.train.dtype != "f64" ? e.optimizer / 2 : 0;
  const std::string state_fix =
      str_cat("set optim.state_dtype bf16 (AdamW moments in bf16: ", bytes_text(state_saving), " less)");
  std::string fix;
  if (fixed < budget.bytes) {
    // What does not grow with the micro-batch: the model's state and the loss's logits chunk.
    const int64_t batch_part = cfg.data.micro_batch_size * e.per_sequence;
    const int64_t room = budget.bytes - (e.total() - batch_part);
    const int64_t fits = e.per_sequence > 0 ? std::max<int64_t>(0, room / e.per_sequence) : 0;
    fix = fits >= 1 ? str_cat("lower data.micro_batch_size to ", fits, " or less (each sequence of data.seq_len ",
                              cfg.data.seq_len, " needs about ", bytes_text(e.per_sequence), ")")
                    : str_cat("lower data.seq_len (one sequence of ", cfg.data.seq_len, " tokens needs about ",
                              bytes_text(e.per_sequence), ")");
    if (cfg.train.dtype == "f32" && device.is_cuda()) fix += ", or set train.dtype bf16";
    if (state_saving > 0) fix += ", or " + state_fix;
  } else if (fixed - state_saving < budget.bytes) {
    fix = state_fix + ", then check the micro-batch again";
  } else {
    fix = str_cat("the model alone (", with_commas(cfg.model.num_parameters()), " parameters: weights, gradients ",
                  "and AdamW moments ", bytes_text(fixed), ") does not fit: use a smaller model (model.d_model, ",
                  "model.n_layer)", device.is_cuda() && !cfg.dist.zero1 ? ", or several GPUs with dist.zero1" : "");
  }
  fail("the run needs about ", bytes_text(e.total()), " (", bytes_text(fixed), " for the ",
       with_commas(cfg.model.num_parameters()), " parameters, their gradients and AdamW moments",
       e.snapshot ? " and the copy a background checkpoint save makes of them" : "", ", ",
       bytes_text(e.activations + e.transient), " for a micro-batch of ", cfg.data.micro_batch_size, " x ",
       cfg.data.seq_len, " tokens), but ", device.str(), " has ", bytes_text(budget.bytes), " free (", budget.limit,
       "); ", fix);
}

}  // namespace serpent
