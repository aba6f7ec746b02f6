#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/memory.h"
#include "core/storage.h"
#include "core/threads.h"
#include "data/dataset.h"
#include "data/sha256.h"
#include "dist/comm.h"
#include "io/checkpoint_writer.h"
#include "layers/mamba_config_yaml.h"
#include "train/init_from.h"
#include "train/loss_plot.h"
#include "train/memory_estimate.h"
#include "train/signals.h"
#include "train/tensorboard.h"

namespace fs = std::filesystem;

namespace serpent {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string duration_text(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = int64_t(std::llround(s));
  if (t >= 3600) return str_cat(t / 3600, "h", t % 3600 / 60 < 10 ? "0" : "", t % 3600 / 60, "m");
  if (t >= 60) return str_cat(t / 60, "m", t % 60 < 10 ? "0" : "", t % 60, "s");
  return str_cat(t, "s");
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string rate_text(double tokens_per_s) {
  if (tokens_per_s >= 1e6) return fmt("%.2fM", tokens_per_s / 1e6);
  if (tokens_per_s >= 1e4) return fmt("%.1fk", tokens_per_s / 1e3);
  return fmt("%.0f", tokens_per_s);
}

DType model_dtype(const Config& cfg, Device device) {
  const std::string& d = cfg.train.dtype;
  if (d == "f32") return DType::f32;
  if (d == "f64") {
    SERPENT_CHECK(device.is_cpu(), "train.dtype f64 is for checks on the cpu, but train.device is ", cfg.train.device);
    return DType::f64;
  }
  // bf16 mixed precision keeps f32 parameters; the model computes in bf16 (set after the move).
  SERPENT_CHECK(d == "bf16" && device.is_cuda(), "train.dtype ", d, " needs train.device cuda (bf16 mixed precision)");
  return DType::f32;
}

// train.device; in a job of several ranks, a GPU run gives rank i of a node cuda:i.
Device train_device(const Config& cfg, const DistEnv& env) {
  const Device d = Device::parse(cfg.train.device);
  return d.is_cuda() && env.distributed() ? Device::cuda(env.local_rank) : d;
}

// True when dir/<split>_*.bin exists (or `where` is a pattern matching some).
bool has_split(const std::string& where, const std::string& split) {
  try {
    find_shards(where, split);
    return true;
  } catch (const Error&) {
    return false;
  }
}

// The data folder's manifest.json, when it has one: its tokenizer's vocabulary must fit the
// model.
void check_manifest(const Config& cfg) {
  const fs::path manifest = fs::path(cfg.data.path) / "manifest.json";
  std::error_code ec;
  if (!fs::is_regular_file(manifest, ec)) return;
  nlohmann::json j;
  try {
    std::ifstream in(manifest);
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(manifest.string(), " is not valid JSON (", e.what(), ")");
  }
  if (!j.contains("tokenizer") || !j["tokenizer"].is_object()) return;
  const auto& tok = j["tokenizer"];
  if (tok.contains("vocab_size") && tok["vocab_size"].is_number_integer()) {
    const int64_t v = tok["vocab_size"].get<int64_t>();
    SERPENT_CHECK(v <= cfg.model.vocab_size, "data.path ", cfg.data.path, " was tokenized with a vocabulary of ", v,
                  " ids (", manifest.string(), "), more than model.vocab_size ", cfg.model.vocab_size);
  }
}

// data.tokenizer: the one the dataset's manifest names when the config names none; a config that
// names another one is refused (its samples would be decoded with the wrong vocabulary). The
// same tokenizer under another path is recognized by the manifest's sha256 of tokenizer.json.
void resolve_data_tokenizer(Config& cfg) {
  const fs::path manifest = fs::path(cfg.data.path) / "manifest.json";
  std::error_code ec;
  nlohmann::json tok;
  if (fs::is_regular_file(manifest, ec)) {
    try {
      std::ifstream in(manifest);
      tok = nlohmann::json::parse(in).value("tokenizer", nlohmann::json());
    } catch (const nlohmann::json::exception& e) {
      fail(manifest.string(), " is not valid JSON (", e.what(), ")");
    }
  }
  const std::string named = tok.is_object() && tok.contains("name") && tok["name"].is_string() ? tok["name"] : "";
  std::string& mine = cfg.data.tokenizer;
  if (mine.empty()) {
    mine = named.empty() ? "byte" : named;
    return;
  }
  if (named.empty() || mine == named) return;
  const std::string sha = tok.contains("sha256") && tok["sha256"].is_string() ? tok["sha256"] : "";
  if (mine != "byte" && !sha.empty() && fs::is_regular_file(mine, ec) && sha256_file(mine) == sha) return;
  fail("data.tokenizer is '", mine, "' but ", cfg.data.path, " was prepared with '", named, "' (", manifest.string(),
       "); leave data.tokenizer out to use the dataset's, or prepare the data with this tokenizer");
}

// The config as the run uses it, validated: data.tokenizer resolved against the dataset, and
// under train.init_from with no model key given, the model the source holds.
Config with_init_model(Config cfg) {
  resolve_data_tokenizer(cfg);
  if (!cfg.train.init_from.empty() && !cfg.model_given) {
    cfg.model = init_source_model(cfg.train.init_from);
    cfg.model_given = true;
  }
  cfg.validate();
  return cfg;
}

// Dotted keys whose values differ between two configs (their YAML dumps list every key in the
// same order, one per line).
std::vector<std::string> changed_keys(const Config& a, const Config& b) {
  std::istringstream x(a.to_yaml()), y(b.to_yaml());
  std::vector<std::string> out;
  std::string la, lb, section;
  while (std::getline(x, la) && std::getline(y, lb)) {
    if (!la.empty() && la[0] != ' ' && la[0] != '#') section = la.substr(0, la.find(':'));
    if (la == lb || la.empty() || la[0] != ' ') continue;
    const size_t start = la.find_first_not_of(' ');
    out.push_back(section + "." + la.substr(start, la.find(':') - start));
  }
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

Trainer::Trainer(const Config& cfg, const TrainerOptions& opts)
    : cfg_(with_init_model(cfg)),
      opts_(opts),
      env_(dist_env_from_process()),
      device_(train_device(cfg, env_)),
      accum_(cfg.grad_accum_steps(env_.world_size)),
      total_steps_(cfg.total_steps()),
      run_dir_(cfg.run_dir()),
      ckpt_dir_(cfg.checkpoint_dir()),
      gen_(uint64_t(cfg.train.seed)),
      schedule_(cfg.schedule_config()) {
  if (device_.is_cuda() && env_.distributed())
    SERPENT_CHECK(device_.index < cuda_device_count(), env_.describe(), " trains on ", device_.str(),
                  " (GPU i for local rank i), but this build of serpent sees ", cuda_device_count(),
                  " CUDA device(s) here; start at most that many ranks per node");
  else if (device_.is_cuda())
    SERPENT_CHECK(device_.index < cuda_device_count(), "train.device ", cfg_.train.device,
                  ": this build of serpent sees ", cuda_device_count(),
                  " CUDA device(s); set train.device to cpu or an existing GPU");
  const DType dtype = model_dtype(cfg_, device_);
  const std::string threads = use_threads(cfg_.train.threads);

  // Data first: a missing folder is the most likely mistake, and the cheapest to report.
  const std::string& data = cfg_.data.path;
  std::error_code ec;
  SERPENT_CHECK(fs::exists(data, ec), "data.path '", data, "' does not exist; make it with: serpent prepare ",
                "--tokenizer ", cfg_.data.tokenizer, " --input TEXT_FILES_OR_FOLDERS --out ", data);
  SERPENT_CHECK(has_split(data, "train"), "data.path '", data,
                "' holds no train shards (train_*.bin); make them with: ", "serpent prepare --tokenizer ",
                cfg_.data.tokenizer, " --input TEXT_FILES_OR_FOLDERS --out ", data);
  std::vector<std::string> warnings;
  check_manifest(cfg_);
  // The shards the manifest lists, checked against it, and every token id against the model's
  // vocabulary (read in full once per dataset, data/dataset.h).
  const bool show = opts_.progress && env_.rank == 0;
  auto last_shown = std::chrono::steady_clock::now();
  const DatasetShards shards = open_dataset(data, cfg_.model.vocab_size, [&](int64_t done, int64_t total) {
    const auto now = std::chrono::steady_clock::now();
    // Worth a line only when it takes a while: 100 MB or more, every 5 s and at the end.
    if (!show || total < 100000000 || (now - last_shown < std::chrono::seconds(5) && done < total)) return;
    last_shown = now;
    std::fprintf(stderr, "checking %s: %.0f of %.0f MB read (sha256 and token ids; once per dataset)\n", data.c_str(),
                 double(done) / 1e6, double(total) / 1e6);
  });
  warnings.insert(warnings.end(), shards.warnings.begin(), shards.warnings.end());
  LoaderOptions lo;
  lo.batch_size = cfg_.data.micro_batch_size;
  lo.seq_len = cfg_.data.seq_len;
  lo.seed = uint64_t(cfg_.train.seed);
  lo.prefetch = int(cfg_.data.prefetch);
  lo.vocab_size = cfg_.model.vocab_size;
  lo.rank = env_.rank;
  lo.world_size = env_.world_size;
  loader_ = std::make_unique<DataLoader>(shards.train, lo);
  if (!shards.val.empty()) {
    lo.prefetch = 0;
    val_ = std::make_unique<ValLoader>(shards.val, lo);
  } else {
    warnings.push_back(str_cat("warning: data.path '", data, "' has no val shards (val_*.bin): no validation"));
  }

  // Before anything large is allocated: the run must fit (parameters, optimizer, activations).
  check_training_memory(cfg_, device_, env_.world_size);
  {
    const MemoryEstimate e = estimate_training_memory(cfg_, device_, env_.world_size);
    const MemoryBudget budget = memory_budget(device_);
    warnings.push_back(str_cat("  memory: about ", bytes_text(e.total()), " estimated (weights, gradients and moments ",
                               bytes_text(e.weights + e.gradients + e.optimizer), ", activations ",
                               bytes_text(e.activations + e.transient), "), ", bytes_text(budget.bytes), " free on ",
                               device_.str(), " (", budget.limit, ")"));
  }
  // The model is initialized on the cpu (the same numbers whatever the device), then moved.
  model_ = std::make_unique<MambaLM>(cfg_.model, gen_, dtype);
  writer_ = std::make_unique<CheckpointWriter>(cfg_.checkpoint.async);
  model_->to(device_);
  if (cfg_.train.dtype == "bf16") model_->set_compute_dtype(DType::bf16);
  model_->set_recompute_blocks(cfg_.train.recompute == "full");
  dp_ = std::make_unique<DataParallel>(*model_,
                                       make_communicator(env_, device_, {cfg_.dist.backend, cfg_.dist.timeout_s}),
                                       cfg_.adamw_config(), DataParallelOptions{cfg_.dist.zero1, cfg_.dist.bucket_mb});

  // The checkpoint folder and the run folder are rank 0's; a failure there stops every rank.
  run_agreed(dp_->comm(), [&] {
    if (rank() != 0) return;
    lock_ = std::make_unique<RunFolderLock>(run_dir_);
    const std::vector<std::string> existing = list_checkpoints(ckpt_dir_);
    const auto load_start = std::chrono::steady_clock::now();
    if (opts_.resume.empty()) {
      SERPENT_CHECK(existing.empty(), "the checkpoint folder ", ckpt_dir_, " already holds ", existing.size(),
                    " checkpoint(s) (newest ", existing.front(),
                    "); pass --resume auto to continue that run, or set another train.name / remove the folder to ",
                    "start over");
    } else if (opts_.resume == "auto") {
      if (auto found = load_latest_checkpoint(ckpt_dir_)) {
        restore(found->first, found->second, warnings);
      } else {
        SERPENT_CHECK(existing.empty(), "--resume auto: none of the ", existing.size(), " checkpoints in ", ckpt_dir_,
                      " is intact (see the warnings above); pass --resume PATH to pick one, or move them away to ",
                      "start over");
        warnings.push_back(str_cat("note: --resume auto: no checkpoint in ", ckpt_dir_, " yet; starting a new run"));
      }
    } else {
      restore(opts_.resume, load_checkpoint(opts_.resume), warnings);
    }
    resume_seconds_ = seconds_since(load_start);

    // A new run from trained weights (a resumed one has its own).
    if (resumed_from_.empty() && !cfg_.train.init_from.empty()) {
      model_->load_state_dict(read_init_weights(cfg_.train.init_from, cfg_.model));
      warnings.push_back(str_cat("note: the weights come from ", cfg_.train.init_from,
                                 " (train.init_from); step 0, a new optimizer and this config's schedule"));
    }
    // A new run never truncates another run's record, whatever folder that run checkpointed to.
    // (--resume auto that finds no checkpoint starts this run over: what is there is its own.)
    if (opts_.resume.empty()) {
      for (const char* name : {"metrics.jsonl", "train.log"}) {
        const fs::path f = fs::path(run_dir_) / name;
        SERPENT_CHECK(!fs::exists(f, ec) || fs::file_size(f, ec) == 0, "the run folder ", run_dir_,
                      " already holds another run's ", name, "; pass --resume auto to continue that run, or set ",
                      "another train.name (or remove the folder) to start over");
      }
    }
    {
      std::ofstream out(run_dir_ + "/config.yaml", std::ios::binary | std::ios::trunc);
      out << cfg_.to_yaml();
      SERPENT_CHECK(out.flush(), "cannot write ", run_dir_, "/config.yaml");
    }
    metrics_ = std::make_unique<MetricsWriter>(run_dir_ + "/metrics.jsonl", resumed_from_.empty() ? -1 : loop_.step);
    if (cfg_.log.tensorboard)
      tensorboard_ = std::make_unique<TensorBoardWriter>(run_dir_, resumed_from_.empty() ? -1 : loop_.step);
    log_ = std::fopen((run_dir_ + "/train.log").c_str(), resumed_from_.empty() ? "w" : "a");
    SERPENT_CHECK(log_, "cannot write ", run_dir_, "/train.log");
  });
  sync_from_rank0();
  record_tokens_ = loop_.tokens_seen;
  // Checkpoints copy the f32 weights and AdamW's two moments of the same shapes (half the size each
  // in bf16): the buffer for them is pinned while the first steps run.
  if (rank() == 0 && device_.is_cuda())
    staging_.reserve((cfg_.optim.state_dtype == "bf16" ? 2 : 3) * HostStaging::bytes_for(model_->named_parameters()));

  const std::string ranks =
      world_size() > 1 ? str_cat(" x ", world_size(), " ranks (", dp_->comm().backend(), ")") : "";
  note(str_cat("serpent train: ", cfg_.train.name, ": ", with_commas(model_->num_parameters()), " parameters (",
               cfg_.model.summary(), ") on ", device_.str(), device_.is_cpu() ? " (" + threads + ")" : "", ranks,
               " in ", cfg_.train.dtype, dp_->zero1() ? ", ZeRO-1" : "",
               cfg_.optim.state_dtype == "bf16" ? ", bf16 AdamW moments" : "",
               cfg_.train.recompute == "full" ? ", blocks recomputed in backward" : ""));
  note(str_cat("  ", total_steps_, " steps of ", with_commas(cfg_.data.global_batch_tokens), " tokens (", accum_, " x ",
               cfg_.data.micro_batch_size, " x ", cfg_.data.seq_len,
               world_size() > 1 ? str_cat(" x ", world_size()) : "", "), ", cfg_.optim.schedule, " schedule to lr ",
               fmt("%.3g", cfg_.optim.lr), ", data ", data, " (", loader_->num_windows(), " train windows",
               val_ ? str_cat(", ", with_commas(val_->num_target_tokens()), " val tokens") : "", "), run folder ",
               run_dir_));
  if (!resumed_from_.empty())
    note(str_cat("  resumed from ", resumed_from_, " at step ", loop_.step, " (", with_commas(loop_.tokens_seen),
                 " tokens; read and loaded in ", fmt("%.2f", resume_seconds_), " s)"));
  for (const std::string& w : warnings) note(w);
}

Trainer::~Trainer() {
  if (log_) std::fclose(log_);
}

void Trainer::restore(const std::string& path, const Checkpoint& c, std::vector<std::string>& notes) {
  const MambaConfig saved = mamba_config_from_config_text(c.config_yaml, "checkpoint " + path);
  const std::vector<std::string> diffs = model_differences(saved, cfg_.model);
  SERPENT_CHECK(diffs.empty(), "checkpoint ", path, " holds another model than the config describes (checkpoint vs ",
                "config): ", join(diffs), "; resume with the checkpoint's model settings, or start a new run");
  SERPENT_CHECK(c.has_optim(), "checkpoint ", path,
                " has no optimizer state (a model-only file, e.g. from import-hf), so training cannot resume from it");
  try {
    const std::vector<std::string> changed = changed_keys(Config::parse(c.config_yaml, path), cfg_);
    if (!changed.empty()) notes.push_back("note: the config differs from the checkpoint's in " + join(changed));
  } catch (const Error&) {
    // A config that does not parse as a whole (an older or foreign file): the model check above
    // is what matters.
  }
  model_->load_state_dict(c.model);
  pending_optim_ = c.optim;
  apply(LoopState::load_from(c, path));
  resumed_from_ = path;
  last_checkpoint_ = path;
  last_checkpoint_step_ = loop_.step;
}

LoopState Trainer::snapshot() const {
  LoopState s = loop_;
  s.rng_seed = gen_.seed;
  s.rng_offset = gen_.offset;
  s.loader = loader_->state();
  return s;
}

void Trainer::apply(const LoopState& s) {
  loop_ = s;
  gen_.seed = s.rng_seed;
  gen_.offset = s.rng_offset;
  loader_->restore(s.loader);
}

void Trainer::sync_from_rank0() {
  // The loop state travels in its checkpoint form, and with it the checkpoint it came from.
  const nlohmann::json j = nlohmann::json::parse(broadcast_bytes(
      dp_->comm(),
      rank() == 0 ? nlohmann::json{{"loop", snapshot().encode()}, {"resumed_from", resumed_from_}}.dump()
                  : std::string(),
      0));
  run_agreed(dp_->comm(), [&] {
    if (rank() == 0) return;
    apply(LoopState::decode(j.at("loop")));
    resumed_from_ = j.at("resumed_from");
    last_checkpoint_ = resumed_from_;
    last_checkpoint_step_ = resumed_from_.empty() ? -1 : loop_.step;
  });
  dp_->broadcast_parameters();
  if (!resumed_from_.empty()) dp_->load_optimizer_state(pending_optim_, loop_.optim_step);
  pending_optim_.clear();
}

StepResult Trainer::step() {
  StepResult r;
  r.lr = schedule_.lr(loop_.step);
  dp_->zero_grad();
  Tensor loss_sum;  // on the device: the host reads it once per step
  for (int64_t i = 0; i < accum_; ++i) {
    Batch b = loader_->next_batch();
    Tensor loss = model_->loss(b.inputs.to(device_), b.targets.to(device_));
    dp_->set_sync(i == accum_ - 1);  // the last backward averages the gradients over the ranks
    autograd::backward(accum_ == 1 ? loss : scale(loss, 1.0 / double(accum_)));
    autograd::NoGradGuard no_grad;
    loss_sum = loss_sum.defined() ? add(loss_sum, loss.detach()) : loss.detach();
  }
  dp_->finish_backward();
  // The update is enqueued before the host reads anything: the norm (the same on every rank)
  // stays a device tensor and the optimizer decides the clipping and the non-finite skip itself
  // (on a GPU, on the device). The host then reads the loss and the norm once, for the log and the
  // non-finite bookkeeping. The loss is summed over the ranks, and so is the stop request, so that
  // every rank stops after the same step.
  const Tensor norm = dp_->grad_norm();
  dp_->step(r.lr, norm, cfg_.train.grad_clip);
  const std::vector<double> sums = all_reduce_sum(dp_->comm(), {loss_sum.item(), stop_signal() ? 1.0 : 0.0});
  r.loss = sums[0] / double(accum_ * world_size());
  stop_requested_ = sums[1] > 0;
  r.grad_norm = norm.item();
  r.skipped = !std::isfinite(r.loss) || !std::isfinite(r.grad_norm);

  ++loop_.step;
  loop_.tokens_seen += cfg_.data.global_batch_tokens;
  if (r.skipped) {
    ++loop_.nonfinite_run;
    ++loop_.interval_skipped;
  } else {
    loop_.nonfinite_run = 0;
    loop_.interval_loss_sum += r.loss;
    loop_.interval_grad_norm_sum += r.grad_norm;
    ++loop_.interval_steps;
  }
  return r;
}

std::optional<EvalResult> Trainer::validate() {
  if (!val_) return std::nullopt;
  // Each rank scores its own windows; eval.batches counts the batches of all ranks together.
  const int64_t w = world_size();
  const int64_t batches = cfg_.eval.batches > 0 ? (cfg_.eval.batches + w - 1) / w : 0;
  const EvalSums mine = evaluate_sums(*model_, *val_, batches, device_);
  const std::vector<double> all = all_reduce_sum(dp_->comm(), {mine.nll, double(mine.tokens), double(mine.batches)});
  if (all[1] <= 0) throw JobError("evaluate: the validation data holds no tokens to score");
  EvalResult r;
  r.loss = all[0] / all[1];
  r.ppl = std::exp(r.loss);
  r.tokens = int64_t(all[1]);
  r.batches = int64_t(all[2]);
  return r;
}

std::string Trainer::write_checkpoint() {
  const auto t0 = std::chrono::steady_clock::now();
  // The previous save must be complete (and its failure, if any, stops every rank) before the
  // next one starts: at most one in flight.
  finish_checkpoint();
  // Every rank takes part in gathering the optimizer state; rank 0 takes a host snapshot of the
  // state and writes it, in the background with checkpoint.async.
  const NamedTensors optim = dp_->optimizer_state();
  const int64_t optim_steps = dp_->optimizer_steps();
  const std::string path = checkpoint_path(ckpt_dir_, loop_.step);
  const double waited = seconds_since(t0);
  std::string copied;
  run_agreed(dp_->comm(), [&] {
    if (rank() != 0) return;
    Checkpoint c;
    c.config_yaml = cfg_.to_yaml();
    if (device_.is_cuda()) {
      std::vector<NamedTensors> copies = staging_.copy({model_->named_parameters(), optim});
      c.model = std::move(copies[0]);
      c.optim = std::move(copies[1]);
      copied = str_cat("; ", fmt("%.2f", double(staging_.capacity()) / 1e9), " GB copied to ",
                       staging_.pinned() ? "page-locked" : "pageable", " host memory in ",
                       fmt("%.3f", staging_.last_copy_seconds()), " s after ",
                       fmt("%.3f", staging_.last_alloc_seconds()), " s allocating or waiting for it");
    } else {
      c.model = host_copies(model_->named_parameters());
      c.optim = host_copies(optim);
    }
    LoopState state = snapshot();
    state.optim_step = optim_steps;
    state.save_to(c);
    writer_->save(path, std::move(c), cfg_.checkpoint.keep_last);
  });
  last_checkpoint_ = path;
  last_checkpoint_step_ = loop_.step;
  log_line(str_cat("checkpoint ", path, ": training stalled ", fmt("%.3f", seconds_since(t0)), " s (",
                   fmt("%.3f", waited), " s waiting for the previous save and gathering the optimizer state", copied,
                   ")", cfg_.checkpoint.async ? "; written in the background" : ""));
  return path;
}

void Trainer::finish_checkpoint() {
  run_agreed(dp_->comm(), [&] {
    if (rank() != 0 || !writer_->in_flight()) return;
    writer_->wait();
    log_line(str_cat("checkpoint written in ", fmt("%.3f", writer_->last_write_seconds()), " s"));
  });
}

void Trainer::note(const std::string& line) {
  if (rank() != 0) return;
  if (opts_.progress) std::fprintf(stderr, "%s\n", line.c_str());
  log_line(line);
}

void Trainer::log_line(const std::string& line) {
  if (!log_) return;
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
  std::fprintf(log_, "%s %s\n", stamp, line.c_str());
  std::fflush(log_);
}

void Trainer::record(const StepResult& last, const std::optional<EvalResult>& val) {
  if (rank() != 0) {  // rank 0 reports; the others only start the next interval
    loop_.interval_loss_sum = loop_.interval_grad_norm_sum = 0;
    loop_.interval_steps = loop_.interval_skipped = 0;
    record_seconds_ = train_seconds_;
    record_tokens_ = loop_.tokens_seen;
    return;
  }
  MetricsRecord m;
  m.step = loop_.step;
  m.loss = loop_.interval_steps > 0 ? loop_.interval_loss_sum / double(loop_.interval_steps) : NAN;
  m.grad_norm = loop_.interval_steps > 0 ? loop_.interval_grad_norm_sum / double(loop_.interval_steps) : NAN;
  m.lr = last.lr;
  m.tokens = loop_.tokens_seen;
  const double seconds = train_seconds_ - record_seconds_;
  m.tokens_per_s = seconds > 0 ? double(loop_.tokens_seen - record_tokens_) / seconds : 0;
  m.skipped = loop_.interval_skipped;
  m.wall_time = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const int64_t interval = loop_.interval_steps + loop_.interval_skipped;
  m.ms_per_step = interval > 0 ? 1000 * seconds / double(interval) : 0;
  m.peak_memory = double(peak_memory(device_));
  if (device_.is_cuda())  // per GPU: the tokens of every rank over the ranks' GPUs
    m.mfu = cfg_.model.training_flops_per_token() * m.tokens_per_s / double(world_size()) / kPeakBf16Flops;
  if (val) {
    m.val_loss = val->loss;
    m.val_ppl = val->ppl;
  }
  metrics_->write(m);
  if (tensorboard_) {
    std::vector<std::pair<std::string, double>> v = {{"train/lr", m.lr},
                                                     {"train/tokens_per_s", m.tokens_per_s},
                                                     {"train/ms_per_step", m.ms_per_step},
                                                     {"train/tokens", double(m.tokens)}};
    if (std::isfinite(m.loss)) v.emplace_back("train/loss", m.loss);
    if (std::isfinite(m.grad_norm)) v.emplace_back("train/grad_norm", m.grad_norm);
    if (m.peak_memory) v.emplace_back("train/peak_memory_gib", *m.peak_memory / double(1 << 30));
    if (m.mfu) v.emplace_back("train/mfu", *m.mfu);
    if (val) v.insert(v.end(), {{"val/loss", val->loss}, {"val/ppl", val->ppl}});
    tensorboard_->scalars(m.step, m.wall_time, v);
  }

  const int width = int(std::to_string(total_steps_).size());
  const double eta =
      session_steps_ > 0 ? double(total_steps_ - loop_.step) * train_seconds_ / double(session_steps_) : NAN;
  std::string line = str_cat(
      "step ", fmt(str_cat("%", width, ".0f").c_str(), double(loop_.step)), "/", total_steps_, " | loss ",
      fmt("%.4f", m.loss), " | lr ", fmt("%.2e", m.lr), " | grad ", fmt("%.3f", m.grad_norm), " | ",
      rate_text(m.tokens_per_s), " tok/s | ", fmt("%.0f", m.ms_per_step), " ms/step",
      m.mfu ? str_cat(" | MFU ", fmt("%.1f", 100 * *m.mfu), "%") : "",
      device_.is_cuda() ? str_cat(" | ", bytes_text(int64_t(*m.peak_memory))) : "", " | ETA ", duration_text(eta));
  if (m.skipped) line += str_cat(" | ", m.skipped, " skipped");
  if (val) line += str_cat(" | val loss ", fmt("%.4f", val->loss), " ppl ", fmt("%.3f", val->ppl));
  note(line);

  loop_.interval_loss_sum = loop_.interval_grad_norm_sum = 0;
  loop_.interval_steps = loop_.interval_skipped = 0;
  record_seconds_ = train_seconds_;
  record_tokens_ = loop_.tokens_seen;
}

void Trainer::plot() {
  if (rank() != 0) return;
  write_loss_curve(run_dir_ + "/loss.svg", metrics_->records(), str_cat(cfg_.train.name, ": loss per token"));
}

TrainSummary Trainer::run(int64_t stop_step) {
  try {
    return run_steps(stop_step);
  } catch (const JobError&) {
    throw;  // every rank stops with it
  } catch (const Error& e) {
    // This rank alone failed; the others would wait for it in the next collective.
    if (world_size() > 1) dp_->comm().abort_job(e.what());
    throw;
  }
}

TrainSummary Trainer::run_steps(int64_t stop_step) {
  TrainSummary s;
  if (loop_.step >= total_steps_) {
    note(str_cat("the run is already complete at step ", loop_.step, " of ", total_steps_,
                 "; nothing to train (raise train.max_steps or train.max_tokens to go on)"));
    s.step = loop_.step;
    s.checkpoint = last_checkpoint_;
    return s;
  }
  const int64_t max_bad = cfg_.train.max_nonfinite_steps;
  while (loop_.step < total_steps_ && !(stop_step >= 0 && loop_.step >= stop_step)) {
    const auto t0 = std::chrono::steady_clock::now();
    const StepResult r = step();
    train_seconds_ += seconds_since(t0);
    ++session_steps_;

    if (r.skipped)
      note(str_cat("warning: step ", loop_.step, ": loss ", r.loss, ", gradient norm ", r.grad_norm,
                   ": not finite; update skipped (", loop_.nonfinite_run, " in a row; the run stops at ", max_bad,
                   ")"));
    if (loop_.nonfinite_run >= max_bad) {
      record(r, std::nullopt);
      plot();
      const std::string msg = str_cat(
          "the loss or gradient was not finite for ", loop_.nonfinite_run, " steps in a row (steps ",
          loop_.step - loop_.nonfinite_run + 1, " to ", loop_.step, ", train.max_nonfinite_steps ", max_bad, "); ",
          last_checkpoint_.empty() ? "no checkpoint was written" : "the last good checkpoint is " + last_checkpoint_,
          ". Lower optim.lr or check the data");
      if (rank() == 0) writer_->wait();  // the last good checkpoint is complete on disk
      log_line("error: " + msg);         // main() prints it on stderr
      throw JobError(msg);               // the loss and norm are the same on every rank: so is this decision
    }

    const bool last = loop_.step == total_steps_;
    const bool eval_now = val_ && (last || (cfg_.eval.every > 0 && loop_.step % cfg_.eval.every == 0));
    std::optional<EvalResult> val;
    if (eval_now) val = validate();
    if (last || eval_now || loop_.step % cfg_.train.log_every == 0) record(r, val);
    if (last) s.val = val;

    const bool ckpt_now = last || (cfg_.checkpoint.every > 0 && loop_.step % cfg_.checkpoint.every == 0);
    if (ckpt_now && loop_.nonfinite_run > 0 && !last) {
      note(str_cat("warning: step ", loop_.step, ": checkpoint deferred while steps are being skipped"));
    } else if (ckpt_now) {
      write_checkpoint();
    }
    if (ckpt_now || eval_now) plot();

    // A stop signal counts once step() has summed the requests over the ranks.
    const bool stop_here = stop_step >= 0 && loop_.step >= stop_step;
    if ((stop_requested_ || stop_here) && !last) {
      if (last_checkpoint_step_ != loop_.step) write_checkpoint();
      finish_checkpoint();
      plot();
      const int sig = stop_signal();
      const std::string why = !stop_requested_ ? "stopped"
                              : sig            ? str_cat("received ", signal_name(sig), ": stopped")
                                               : "another rank received a stop signal: stopped";
      note(str_cat(why, " after step ", loop_.step, " of ", total_steps_, "; checkpoint ", last_checkpoint_,
                   " (continue with --resume auto)"));
      s.reason = stop_requested_ ? StopReason::signal : StopReason::stop_step;
      s.step = loop_.step;
      s.checkpoint = last_checkpoint_;
      return s;
    }
  }
  finish_checkpoint();
  s.reason = StopReason::completed;
  s.step = loop_.step;
  s.checkpoint = last_checkpoint_;
  note(str_cat("done: ", loop_.step, " steps, ", with_commas(loop_.tokens_seen), " tokens in ",
               duration_text(train_seconds_), " of training",
               s.val ? str_cat("; val loss ", fmt("%.4f", s.val->loss), ", ppl ", fmt("%.3f", s.val->ppl)) : "",
               "; checkpoint ", s.checkpoint));
  return s;
}

}  // namespace serpent
