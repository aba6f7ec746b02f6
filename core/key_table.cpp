#include "core/key_table.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/device.h"

namespace serpent::keys {

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
Spec rank_or_auto(double hi) {
  Spec s = interval(1, hi, false, false);
  s.auto_zero = true;
  return s;
}

std::string format_number(double v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, res.ptr);
  const size_t e = s.find('e');
  if (e != std::string::npos && s.find('.') == std::string::npos) s.insert(e, ".0");
  return s;
}

std::string yaml_number(double v) {
  std::string s = format_number(v);
  if (s.find_first_of(".ein") == std::string::npos) s += ".0";
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

bool parse_double(const std::string& s, double* out) {
  const char* begin = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
  auto res = std::from_chars(begin, s.data() + s.size(), *out);
  return res.ec == std::errc() && res.ptr == s.data() + s.size() && std::isfinite(*out);
}

bool parse_int(const std::string& s, int64_t* out) {
  const char* begin = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
  auto res = std::from_chars(begin, s.data() + s.size(), *out);
  if (res.ec == std::errc() && res.ptr == s.data() + s.size()) return true;
  double d;
  if (!parse_double(s, &d) || d != std::floor(d) || std::fabs(d) > 9007199254740992.0) return false;
  *out = int64_t(d);
  return true;
}

std::string number_problem(double v, const Spec& spec) {
  const bool low_ok = spec.lo_open ? v > spec.lo : v >= spec.lo;
  const bool high_ok = spec.hi_open ? v < spec.hi : v <= spec.hi;
  if (low_ok && high_ok) return "";
  if (std::isinf(spec.hi)) return str_cat("must be ", spec.lo_open ? "> " : ">= ", format_number(spec.lo));
  return str_cat("must be in ", spec.lo_open ? "(" : "[", format_number(spec.lo), ", ", format_number(spec.hi),
                 spec.hi_open ? ")" : "]");
}

bool is_device_name(const std::string& s) {
  try {
    Device::parse(s);
    return true;
  } catch (const Error&) {
    return false;
  }
}

namespace {

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

std::string leaf_of(const std::string& key) {
  const size_t dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

}  // namespace

std::vector<std::string> sections_of(const std::vector<std::string>& keys) {
  std::vector<std::string> sections;
  for (const std::string& k : keys) {
    const std::string s = k.substr(0, k.find('.'));
    if (std::find(sections.begin(), sections.end(), s) == sections.end()) sections.push_back(s);
  }
  return sections;
}

std::string nearest_key(const std::string& unknown, const std::vector<std::string>& keys) {
  const std::vector<std::string> sections = sections_of(keys);
  const size_t dot = unknown.find('.');
  const std::string section = dot == std::string::npos ? "" : unknown.substr(0, dot), leaf = leaf_of(unknown);
  std::vector<std::string> candidates;
  for (const std::string& k : keys)
    if (leaf_of(k) == leaf) candidates.push_back(k);
  bool compare_leaves = false;
  if (candidates.empty()) {
    if (dot == std::string::npos) {
      candidates = sections;
    } else {
      compare_leaves = std::find(sections.begin(), sections.end(), section) != sections.end();
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

void unknown_key(const std::string& where, const std::string& key, const std::vector<std::string>& keys) {
  fail(where, ": unknown key '", key, "' (did you mean '", nearest_key(key, keys), "'?)");
}

}  // namespace serpent::keys
