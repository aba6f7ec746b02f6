#include "train/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/device.h"
#include "core/error.h"
#include "core/key_table.h"

namespace serpent {

namespace {

using namespace keys;

// The one table of keys: every operation (parse, set, validate, dump, list) walks it. C is Config
// or const Config; f(key, member, spec).
template <class C, class F>
void for_each_key(C& c, F&& f) {
  for_each_model_key(c.model, f);

  f("data.path", c.data.path, nonempty());
  f("data.tokenizer", c.data.tokenizer, any());
  f("data.seq_len", c.data.seq_len, at_least(1));
  f("data.micro_batch_size", c.data.micro_batch_size, at_least(1));
  f("data.global_batch_tokens", c.data.global_batch_tokens, at_least(1));
  f("data.prefetch", c.data.prefetch, at_least(0));

  f("train.name", c.train.name, nonempty());
  f("train.max_steps", c.train.max_steps, at_least(0));
  f("train.max_tokens", c.train.max_tokens, at_least(0));
  f("train.seed", c.train.seed, at_least(0));
  f("train.device", c.train.device, device_name());
  f("train.dtype", c.train.dtype, one_of({"f32", "bf16", "f64"}));
  f("train.grad_clip", c.train.grad_clip, at_least(0));
  f("train.log_every", c.train.log_every, at_least(1));
  f("train.max_nonfinite_steps", c.train.max_nonfinite_steps, at_least(1));
  f("train.init_from", c.train.init_from, any());
  f("train.threads", c.train.threads, at_least(0));
  f("train.recompute", c.train.recompute, one_of({"none", "full"}));

  f("optim.lr", c.optim.lr, positive());
  f("optim.min_lr", c.optim.min_lr, at_least(0));
  f("optim.betas", c.optim.betas, interval(0, 1, false, true));
  f("optim.eps", c.optim.eps, positive());
  f("optim.weight_decay", c.optim.weight_decay, at_least(0));
  f("optim.schedule", c.optim.schedule, one_of({"cosine", "wsd", "constant"}));
  f("optim.warmup_steps", c.optim.warmup_steps, at_least(0));
  f("optim.decay_fraction", c.optim.decay_fraction, interval(0, 1, true, false));
  f("optim.state_dtype", c.optim.state_dtype, one_of({"f32", "bf16"}));

  f("eval.every", c.eval.every, at_least(0));
  f("eval.batches", c.eval.batches, at_least(0));

  f("checkpoint.every", c.checkpoint.every, at_least(0));
  f("checkpoint.keep_last", c.checkpoint.keep_last, at_least(1));
  f("checkpoint.dir", c.checkpoint.dir, any());
  f("checkpoint.async", c.checkpoint.async, any());

  f("dist.backend", c.dist.backend, one_of({"auto", "local", "mpi", "nccl"}));
  f("dist.zero1", c.dist.zero1, any());
  f("dist.bucket_mb", c.dist.bucket_mb, positive());
  f("dist.timeout_s", c.dist.timeout_s, positive());

  f("log.runs_dir", c.log.runs_dir, nonempty());
  f("log.tensorboard", c.log.tensorboard, any());
}

struct ConfigTable {
  template <class C, class F>
  void operator()(C& c, F&& f) const {
    for_each_key(c, f);
  }
};

const std::vector<std::string>& sections() {
  static const std::vector<std::string> all = sections_of(config_keys());
  return all;
}

bool is_section(const std::string& name) {
  return std::find(sections().begin(), sections().end(), name) != sections().end();
}

// Sets `key` from node; `where` names the source (file or --set) in errors.
void assign(Config& c, const std::string& where, const std::string& key, const YAML::Node& node) {
  if (assign_key(c, ConfigTable{}, where, key, node)) return;
  const std::vector<std::string>& keys = config_keys();
  if (is_section(key)) {
    const auto first =
        std::find_if(keys.begin(), keys.end(), [&](const std::string& k) { return k.rfind(key + ".", 0) == 0; });
    fail(where, ": '", key, "' is a section; set one of its keys, like ", *first);
  }
  unknown_key(where, key, keys);
}

}  // namespace

const std::vector<std::string>& config_keys() {
  static const Config defaults;
  static const std::vector<std::string> keys = keys_of(defaults, ConfigTable{});
  return keys;
}

Config Config::parse(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    fail(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": YAML syntax error: ", e.msg);
  }
  Config c;
  if (root.IsNull()) return c;
  SERPENT_CHECK(root.IsMap(), source, ": expected a map of sections (", join(sections(), ", "), "), got ",
                describe(root));
  // yaml-cpp keeps both entries of a repeated key; a second value would silently win.
  std::set<std::string> seen;
  for (const auto& section : root) {
    const std::string name = section.first.Scalar();
    if (!is_section(name)) unknown_key(source, name, config_keys());
    SERPENT_CHECK(seen.insert(name).second, source, ": section '", name, "' appears twice; merge the two");
    const YAML::Node& body = section.second;
    if (body.IsNull()) continue;
    SERPENT_CHECK(body.IsMap(), source, ": section '", name, "' must be a map of keys, got ", describe(body));
    for (const auto& entry : body) {
      const std::string key = name + "." + entry.first.Scalar();
      SERPENT_CHECK(seen.insert(key).second, source, ": key ", key, " appears twice; keep one");
      assign(c, source, key, entry.second);
      if (name == "model") c.model_given = true;
    }
  }
  return c;
}

Config Config::load(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  SERPENT_CHECK(!std::filesystem::is_directory(path, ec), "config file '", path,
                "' is a folder; give a YAML file (e.g. configs/tiny.yaml)");
  std::ifstream in(path, std::ios::binary);
  SERPENT_CHECK(in, "cannot read config file '", path, "'");
  std::stringstream text;
  text << in.rdbuf();
  Config c = parse(text.str(), path);
  for (const std::string& o : overrides) c.set(o);
  try {
    c.validate();
  } catch (const Error& e) {
    fail(path, overrides.empty() ? "" : " with --set overrides", ": ", e.what());
  }
  return c;
}

void Config::set(const std::string& assignment) {
  const size_t eq = assignment.find('=');
  SERPENT_CHECK(eq != std::string::npos && eq > 0, "--set expects section.key=value, got '", assignment, "'");
  set(assignment.substr(0, eq), assignment.substr(eq + 1));
}

void Config::set(const std::string& key, const std::string& value) {
  const std::string where = "--set " + key + "=" + value;
  YAML::Node node(value);
  if (key == "optim.betas") {  // the one list-valued key: read the value as YAML ([0.9, 0.95])
    try {
      node = YAML::Load(value);
    } catch (const YAML::Exception& e) {
      fail(where, ": ", key, " expects a list of two numbers, like [0.9, 0.95]: ", e.msg);
    }
  }
  assign(*this, where, key, node);
  if (key.rfind("model.", 0) == 0) model_given = true;
}

void Config::validate() const {
  for_each_key(*this, [](const char* name, const auto& member, const Spec& spec) { check_range(name, member, spec); });
  model.validate();
  // The run folder is <log.runs_dir>/<train.name>: a name that is a path would put it elsewhere.
  SERPENT_CHECK(
      train.name != "." && train.name != ".." && train.name.find_first_of("/\\") == std::string::npos &&
          std::none_of(train.name.begin(), train.name.end(), [](char ch) { return (unsigned char)ch < 0x20; }),
      "train.name must be a folder name (no '/', not '.' or '..'), got '", train.name,
      "'; set log.runs_dir for the folder the runs go to");
  SERPENT_CHECK(data.tokenizer != "byte" || model.vocab_size >= 257, "model.vocab_size ", model.vocab_size,
                " is smaller than the byte tokenizer's 257 ids (256 bytes and end-of-text; data.tokenizer is byte)");
  SERPENT_CHECK(data.global_batch_tokens % tokens_per_micro_batch() == 0, "data.global_batch_tokens ",
                data.global_batch_tokens,
                " must be a multiple of data.micro_batch_size * data.seq_len = ", data.micro_batch_size, " * ",
                data.seq_len, " = ", tokens_per_micro_batch());
  SERPENT_CHECK(train.max_steps > 0 || train.max_tokens > 0,
                "train.max_steps and train.max_tokens are both 0; set one of them to the length of the run");
  SERPENT_CHECK(train.max_steps == 0 || train.max_tokens == 0, "train.max_steps (", train.max_steps,
                ") and train.max_tokens (", train.max_tokens, ") are both set; set the other one to 0");
  SERPENT_CHECK(train.dtype != "bf16" || Device::parse(train.device).is_cuda(),
                "train.dtype bf16 (mixed precision) needs a CUDA device, but train.device is ", train.device);
  SERPENT_CHECK(optim.state_dtype != "bf16" || train.dtype != "f64",
                "optim.state_dtype bf16 keeps the AdamW moments in bf16 next to f32 weights; train.dtype f64 keeps "
                "f64 weights: use optim.state_dtype f32 or train.dtype f32/bf16");
  LRSchedule check(schedule_config());  // min_lr <= lr, warmup and the wsd decay within the run
}

std::string Config::to_yaml() const {
  YAML::Emitter out;
  out << YAML::Comment("serpent resolved config (docs/CONFIG.md)");
  out << YAML::BeginMap;
  std::string open_section;
  for_each_key(*this, [&](const char* name, const auto& member, const Spec& spec) {
    const std::string key = name, section = key.substr(0, key.find('.'));
    if (section != open_section) {
      if (!open_section.empty()) out << YAML::EndMap;
      out << YAML::Key << section << YAML::Value << YAML::BeginMap;
      open_section = section;
    }
    out << YAML::Key << key.substr(section.size() + 1) << YAML::Value;
    emit(out, member, spec);
  });
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

int64_t Config::grad_accum_steps(int64_t world_size) const {
  SERPENT_CHECK(world_size >= 1, "grad_accum_steps: world size must be at least 1, got ", world_size);
  const int64_t per_step = tokens_per_micro_batch() * world_size;
  SERPENT_CHECK(data.global_batch_tokens % per_step == 0, "data.global_batch_tokens ", data.global_batch_tokens,
                " must be a multiple of data.micro_batch_size * data.seq_len * ranks = ", data.micro_batch_size, " * ",
                data.seq_len, " * ", world_size, " = ", per_step);
  return data.global_batch_tokens / per_step;
}

int64_t Config::total_steps() const {
  if (train.max_steps > 0) return train.max_steps;
  return (train.max_tokens + data.global_batch_tokens - 1) / data.global_batch_tokens;
}

std::string Config::run_dir() const {
  return log.runs_dir + "/" + train.name;
}

std::string Config::checkpoint_dir() const {
  return checkpoint.dir.empty() ? run_dir() + "/checkpoints" : checkpoint.dir;
}

ScheduleConfig Config::schedule_config() const {
  ScheduleConfig s;
  s.kind = schedule_kind_from_name(optim.schedule);
  s.lr = optim.lr;
  s.min_lr = optim.min_lr;
  s.warmup_steps = optim.warmup_steps;
  s.total_steps = total_steps();
  s.decay_fraction = optim.decay_fraction;
  return s;
}

AdamWConfig Config::adamw_config() const {
  AdamWConfig a;
  a.beta1 = optim.betas[0];
  a.beta2 = optim.betas[1];
  a.eps = optim.eps;
  a.weight_decay = optim.weight_decay;
  a.bf16_moments = optim.state_dtype == "bf16";
  return a;
}

}  // namespace serpent
