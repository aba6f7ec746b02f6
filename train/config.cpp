#include "train/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <type_traits>

#include "core/device.h"
#include "core/error.h"

namespace serpent {

namespace {

constexpr const char* kSections[] = {"model", "data", "train", "optim", "eval", "checkpoint", "dist", "log"};

// What values a key accepts beyond its type. Numbers: a closed or open interval. Strings: a fixed
// set of words, non-empty, or a device name. Integers with auto_zero read "auto" as 0.
struct Spec {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  std::vector<std::string> choices;
  bool nonempty = false;
  bool device = false;
  bool auto_zero = false;
};

Spec any() {
  return {};
}
Spec at_least(double lo) {
  Spec s;
  s.lo = lo;
  return s;
}
Spec positive() {
  Spec s = at_least(0);
  s.lo_open = true;
  return s;
}
Spec interval(double lo, double hi, bool lo_open, bool hi_open) {
  Spec s = at_least(lo);
  s.hi = hi;
  s.lo_open = lo_open;
  s.hi_open = hi_open;
  return s;
}
Spec nonempty() {
  Spec s;
  s.nonempty = true;
  return s;
}
Spec one_of(std::vector<std::string> words) {
  Spec s = nonempty();
  s.choices = std::move(words);
  return s;
}
Spec device_name() {
  Spec s = nonempty();
  s.device = true;
  return s;
}
Spec rank_or_auto() {
  Spec s = at_least(1);
  s.auto_zero = true;
  return s;
}

// The one table of keys: every operation (parse, set, validate, dump, list) walks it. C is Config
// or const Config; f(key, member, spec).
template <class C, class F>
void for_each_key(C& c, F&& f) {
  f("model.d_model", c.model.d_model, at_least(1));
  f("model.n_layer", c.model.n_layer, at_least(1));
  f("model.vocab_size", c.model.vocab_size, at_least(1));
  f("model.d_state", c.model.d_state, at_least(1));
  f("model.d_conv", c.model.d_conv, at_least(1));
  f("model.expand", c.model.expand, at_least(1));
  f("model.dt_rank", c.model.dt_rank, rank_or_auto());
  f("model.dt_min", c.model.dt_min, positive());
  f("model.dt_max", c.model.dt_max, positive());
  f("model.dt_init_floor", c.model.dt_init_floor, positive());
  f("model.conv_bias", c.model.conv_bias, any());
  f("model.bias", c.model.bias, any());
  f("model.rms_norm", c.model.rms_norm, any());
  f("model.norm_epsilon", c.model.norm_epsilon, positive());
  f("model.residual_in_fp32", c.model.residual_in_fp32, any());
  f("model.tie_embeddings", c.model.tie_embeddings, any());
  f("model.pad_vocab_size_multiple", c.model.pad_vocab_size_multiple, at_least(1));

  f("data.path", c.data.path, nonempty());
  f("data.tokenizer", c.data.tokenizer, nonempty());
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

  f("optim.lr", c.optim.lr, positive());
  f("optim.min_lr", c.optim.min_lr, at_least(0));
  f("optim.betas", c.optim.betas, interval(0, 1, false, true));
  f("optim.eps", c.optim.eps, positive());
  f("optim.weight_decay", c.optim.weight_decay, at_least(0));
  f("optim.schedule", c.optim.schedule, one_of({"cosine", "wsd", "constant"}));
  f("optim.warmup_steps", c.optim.warmup_steps, at_least(0));
  f("optim.decay_fraction", c.optim.decay_fraction, interval(0, 1, true, false));

  f("eval.every", c.eval.every, at_least(0));
  f("eval.batches", c.eval.batches, at_least(0));

  f("checkpoint.every", c.checkpoint.every, at_least(0));
  f("checkpoint.keep_last", c.checkpoint.keep_last, at_least(1));
  f("checkpoint.dir", c.checkpoint.dir, any());

  f("dist.backend", c.dist.backend, one_of({"auto", "local", "mpi", "nccl"}));
  f("dist.zero1", c.dist.zero1, any());
  f("dist.bucket_mb", c.dist.bucket_mb, positive());
  f("dist.timeout_s", c.dist.timeout_s, positive());

  f("log.runs_dir", c.log.runs_dir, nonempty());
}

// Shortest text that reads back to the same double. An exponent gets a decimal point in front
// (1.0e-05, not 1e-05) so that YAML 1.1 readers such as PyYAML also see a number.
std::string format_number(double v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, res.ptr);
  const size_t e = s.find('e');
  if (e != std::string::npos && s.find('.') == std::string::npos) s.insert(e, ".0");
  return s;
}

std::string join(const std::vector<std::string>& words, const char* sep) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i) out += sep;
    out += words[i];
  }
  return out;
}

// What a key of this C++ type is, for "expects ..." messages.
template <class T>
std::string type_name(const Spec& spec) {
  if constexpr (std::is_same_v<T, int64_t>) return spec.auto_zero ? "a positive integer or auto" : "an integer";
  if constexpr (std::is_same_v<T, double>) return "a number";
  if constexpr (std::is_same_v<T, bool>) return "true or false";
  if constexpr (std::is_same_v<T, std::string>) return "a string";
  if constexpr (std::is_same_v<T, std::array<double, 2>>) return "a list of two numbers, like [0.9, 0.95]";
}

// "" when v is within spec, otherwise what is wrong ("must be > 0").
std::string number_problem(double v, const Spec& spec) {
  const bool low_ok = spec.lo_open ? v > spec.lo : v >= spec.lo;
  const bool high_ok = spec.hi_open ? v < spec.hi : v <= spec.hi;
  if (low_ok && high_ok) return "";
  if (std::isinf(spec.hi)) return str_cat("must be ", spec.lo_open ? "> " : ">= ", format_number(spec.lo));
  return str_cat("must be in ", spec.lo_open ? "(" : "[", format_number(spec.lo), ", ", format_number(spec.hi),
                 spec.hi_open ? ")" : "]");
}

template <class T>
std::string range_problem(const T& v, const Spec& spec) {
  if constexpr (std::is_same_v<T, int64_t>) {
    if (spec.auto_zero && v == 0) return "";
    std::string p = number_problem(double(v), spec);
    return p.empty() || !spec.auto_zero ? p : p + " or auto";
  } else if constexpr (std::is_same_v<T, double>) {
    return number_problem(v, spec);
  } else if constexpr (std::is_same_v<T, std::array<double, 2>>) {
    for (double x : v)
      if (std::string p = number_problem(x, spec); !p.empty()) return "entries " + p;
    return "";
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (spec.nonempty && v.empty()) return "must not be empty";
    if (!spec.choices.empty() && std::find(spec.choices.begin(), spec.choices.end(), v) == spec.choices.end())
      return "must be one of " + join(spec.choices, ", ");
    if (spec.device) {
      try {
        Device::parse(v);
      } catch (const Error&) {
        return "must be cpu, cuda or cuda:N";
      }
    }
    return "";
  } else {
    return "";
  }
}

template <class T>
std::string value_text(const T& v, const Spec& spec) {
  if constexpr (std::is_same_v<T, int64_t>) return spec.auto_zero && v == 0 ? "auto" : std::to_string(v);
  if constexpr (std::is_same_v<T, double>) return format_number(v);
  if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
  if constexpr (std::is_same_v<T, std::string>) return "'" + v + "'";
  if constexpr (std::is_same_v<T, std::array<double, 2>>)
    return str_cat("[", format_number(v[0]), ", ", format_number(v[1]), "]");
}

bool parse_double(const std::string& s, double* out) {
  const char* begin = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
  auto res = std::from_chars(begin, s.data() + s.size(), *out);
  return res.ec == std::errc() && res.ptr == s.data() + s.size() && std::isfinite(*out);
}

// Integers may be written in exponent form (max_tokens: 3e11) when the value is exact.
bool parse_int(const std::string& s, int64_t* out) {
  const char* begin = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
  auto res = std::from_chars(begin, s.data() + s.size(), *out);
  if (res.ec == std::errc() && res.ptr == s.data() + s.size()) return true;
  double d;
  if (!parse_double(s, &d) || d != std::floor(d) || std::fabs(d) > 9007199254740992.0) return false;
  *out = int64_t(d);
  return true;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "an empty value";
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    default:
      return "nothing";
  }
}

// Reads node into value with T's type; false when the node does not hold one.
template <class T>
bool read_value(const YAML::Node& node, T& value, const Spec& spec) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (node.IsNull()) {
      value.clear();
      return true;
    }
    if (!node.IsScalar()) return false;
    value = node.Scalar();
    return true;
  } else if constexpr (std::is_same_v<T, std::array<double, 2>>) {
    if (!node.IsSequence() || node.size() != 2) return false;
    std::array<double, 2> v;
    for (size_t i = 0; i < 2; ++i)
      if (!node[i].IsScalar() || !parse_double(node[i].Scalar(), &v[i])) return false;
    value = v;
    return true;
  } else {
    if (!node.IsScalar()) return false;
    const std::string& s = node.Scalar();
    if constexpr (std::is_same_v<T, int64_t>) {
      if (spec.auto_zero && s == "auto") {
        value = 0;
        return true;
      }
      int64_t v;
      if (!parse_int(s, &v) || (spec.auto_zero && v == 0)) return false;
      value = v;
      return true;
    } else if constexpr (std::is_same_v<T, double>) {
      return parse_double(s, &value);
    } else if constexpr (std::is_same_v<T, bool>) {
      if (s == "true" || s == "True" || s == "TRUE")
        value = true;
      else if (s == "false" || s == "False" || s == "FALSE")
        value = false;
      else
        return false;
      return true;
    }
  }
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

bool is_section(const std::string& name) {
  return std::find(std::begin(kSections), std::end(kSections), name) != std::end(kSections);
}

std::string leaf_of(const std::string& key) {
  const size_t dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

// The valid key nearest to an unknown one. A key whose name exists in other sections gets the
// closest of those (train.lr -> optim.lr, chekpoint.every -> checkpoint.every). Otherwise the
// least edit distance relative to length, so a truncated name finds its long form
// (optim.warmup -> optim.warmup_steps): among the keys of its section when the section is
// valid, among all keys when it is not, and among the sections for a top-level name.
std::string nearest_key(const std::string& unknown) {
  const std::vector<std::string> keys = config_keys();
  const size_t dot = unknown.find('.');
  const std::string section = dot == std::string::npos ? "" : unknown.substr(0, dot), leaf = leaf_of(unknown);
  std::vector<std::string> candidates;
  for (const std::string& k : keys)
    if (leaf_of(k) == leaf) candidates.push_back(k);
  bool compare_leaves = false;
  if (candidates.empty()) {
    if (dot == std::string::npos) {
      candidates.assign(std::begin(kSections), std::end(kSections));
    } else {
      compare_leaves = is_section(section);
      for (const std::string& k : keys)
        if (!compare_leaves || k.rfind(section + ".", 0) == 0) candidates.push_back(k);
    }
  }
  std::string best;
  double best_score = 0;
  for (const std::string& k : candidates) {
    const std::string a = compare_leaves ? leaf : unknown, b = compare_leaves ? leaf_of(k) : k;
    const double score = double(edit_distance(a, b)) / double(std::max(a.size(), b.size()));
    if (best.empty() || score < best_score) {
      best = k;
      best_score = score;
    }
  }
  return best;
}

[[noreturn]] void unknown_key(const std::string& where, const std::string& key) {
  fail(where, ": unknown key '", key, "' (did you mean '", nearest_key(key), "'?)");
}

// Sets `key` from node; `where` names the source (file or --set) in errors.
void assign(Config& c, const std::string& where, const std::string& key, const YAML::Node& node) {
  bool found = false;
  for_each_key(c, [&](const char* name, auto& member, const Spec& spec) {
    if (found || key != name) return;
    found = true;
    using T = std::remove_cvref_t<decltype(member)>;
    T value = member;
    SERPENT_CHECK(read_value(node, value, spec), where, ": ", key, " expects ", type_name<T>(spec), ", got ",
                  describe(node));
    const std::string problem = range_problem(value, spec);
    SERPENT_CHECK(problem.empty(), where, ": ", key, " ", problem, ", got ", value_text(value, spec));
    member = value;
  });
  if (found) return;
  if (is_section(key)) {
    const std::vector<std::string> keys = config_keys();
    const auto first =
        std::find_if(keys.begin(), keys.end(), [&](const std::string& k) { return k.rfind(key + ".", 0) == 0; });
    fail(where, ": '", key, "' is a section; set one of its keys, like ", *first);
  }
  unknown_key(where, key);
}

}  // namespace

std::vector<std::string> config_keys() {
  std::vector<std::string> keys;
  const Config c;
  for_each_key(c, [&](const char* name, const auto&, const Spec&) { keys.push_back(name); });
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
  SERPENT_CHECK(root.IsMap(), source, ": expected a map of sections (",
                join({std::begin(kSections), std::end(kSections)}, ", "), "), got ", describe(root));
  for (const auto& section : root) {
    const std::string name = section.first.Scalar();
    if (!is_section(name)) unknown_key(source, name);
    const YAML::Node& body = section.second;
    if (body.IsNull()) continue;
    SERPENT_CHECK(body.IsMap(), source, ": section '", name, "' must be a map of keys, got ", describe(body));
    for (const auto& entry : body) assign(c, source, name + "." + entry.first.Scalar(), entry.second);
  }
  return c;
}

Config Config::load(const std::string& path, const std::vector<std::string>& overrides) {
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
}

void Config::validate() const {
  for_each_key(*this, [](const char* name, const auto& member, const Spec& spec) {
    const std::string problem = range_problem(member, spec);
    SERPENT_CHECK(problem.empty(), name, " ", problem, ", got ", value_text(member, spec));
  });
  model.validate();
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
    out << YAML::Key << leaf_of(key) << YAML::Value;
    using T = std::remove_cvref_t<decltype(member)>;
    if constexpr (std::is_same_v<T, std::string>) {
      out << YAML::DoubleQuoted << member;
    } else if constexpr (std::is_same_v<T, std::array<double, 2>>) {
      out << YAML::Flow << YAML::BeginSeq << format_number(member[0]) << format_number(member[1]) << YAML::EndSeq;
    } else {
      out << value_text(member, spec);
    }
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
  return a;
}

}  // namespace serpent
