// Typed key tables: the one codec behind every config section. A table is a function template
// that calls f(key, member, spec) for each of its keys, with the key's dotted path ("model.d_model"),
// a reference to the member it sets (its C++ type is the key's type, its initial value the
// default) and its Spec (the range). The model section's table is in layers/mamba_config.h, the
// training config's in train/config.cpp, which reuses the model's. The helpers here read a member
// from a YAML node (a config file or a --set value), check it against its Spec, write it back as
// YAML, and find the nearest valid key for a typo, so every section reports errors the same way:
// one line naming the source, the key and what was expected.
#pragma once

#include <yaml-cpp/yaml.h>

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"

namespace serpent::keys {

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

Spec any();
Spec at_least(double lo);
Spec positive();
Spec interval(double lo, double hi, bool lo_open, bool hi_open);
Spec nonempty();
Spec one_of(std::vector<std::string> words);
Spec device_name();
Spec rank_or_auto(double hi = std::numeric_limits<double>::infinity());  // an integer in [1, hi], or "auto" (0)

// Shortest text that reads back to the same double, with a '.' before any exponent ("0.003",
// "1.0e-05", "2"): YAML 1.1 readers such as PyYAML take 1e-05 for a string.
std::string format_number(double v);
// The same for a float in YAML, where an integral value keeps its '.' too ("2.0"), so that YAML
// readers see a float.
std::string yaml_number(double v);
std::string join(const std::vector<std::string>& words, const char* sep);
// What a node holds, for "got ..." messages: 'text', a list, a map, an empty value.
std::string describe(const YAML::Node& node);

bool parse_double(const std::string& s, double* out);
// Integers may be written in exponent form (max_tokens: 3e11) when the value is exact.
bool parse_int(const std::string& s, int64_t* out);
// "" when v is within spec, otherwise what is wrong ("must be > 0").
std::string number_problem(double v, const Spec& spec);
bool is_device_name(const std::string& s);

// The valid key nearest to an unknown one, among `keys` (dotted paths). A key whose last part
// exists in other sections gets the closest of those (train.lr -> optim.lr). Otherwise the least
// edit distance relative to length, so a truncated name finds its long form (optim.warmup ->
// optim.warmup_steps): among the keys of its section when the section exists, among all keys
// when it does not, and among the sections for a name without a dot.
std::string nearest_key(const std::string& unknown, const std::vector<std::string>& keys);

// The sections of a table's keys (the part before the first dot), in their order.
std::vector<std::string> sections_of(const std::vector<std::string>& keys);

// What a key of this C++ type is, for "expects ..." messages.
template <class T>
std::string type_name(const Spec& spec) {
  if constexpr (std::is_same_v<T, int64_t>) return spec.auto_zero ? "a positive integer or auto" : "an integer";
  if constexpr (std::is_same_v<T, double>) return "a number";
  if constexpr (std::is_same_v<T, bool>) return "true or false";
  if constexpr (std::is_same_v<T, std::string>) return "a string";
  if constexpr (std::is_same_v<T, std::array<double, 2>>) return "a list of two numbers, like [0.9, 0.95]";
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
    if (!spec.choices.empty()) {
      bool listed = false;
      for (const std::string& c : spec.choices) listed = listed || c == v;
      if (!listed) return "must be one of " + join(spec.choices, ", ");
    }
    if (spec.device && !is_device_name(v)) return "must be cpu, cuda or cuda:N";
    return "";
  } else {
    return "";
  }
}

// A value as messages show it: numbers short, strings quoted, dt_rank 0 as auto.
template <class T>
std::string value_text(const T& v, const Spec& spec) {
  if constexpr (std::is_same_v<T, int64_t>) return spec.auto_zero && v == 0 ? "auto" : std::to_string(v);
  if constexpr (std::is_same_v<T, double>) return format_number(v);
  if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
  if constexpr (std::is_same_v<T, std::string>) return "'" + v + "'";
  if constexpr (std::is_same_v<T, std::array<double, 2>>)
    return str_cat("[", format_number(v[0]), ", ", format_number(v[1]), "]");
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

// Reads node into member, checked against spec; `where` names the source (a file or a --set).
template <class T>
void assign(const std::string& where, const std::string& key, T& member, const Spec& spec, const YAML::Node& node) {
  T value = member;
  SERPENT_CHECK(read_value(node, value, spec), where, ": ", key, " expects ", type_name<T>(spec), ", got ",
                describe(node));
  const std::string problem = range_problem(value, spec);
  SERPENT_CHECK(problem.empty(), where, ": ", key, " ", problem, ", got ", value_text(value, spec));
  member = value;
}

// Throws naming the key when member is out of its range.
template <class T>
void check_range(const std::string& key, const T& member, const Spec& spec) {
  const std::string problem = range_problem(member, spec);
  SERPENT_CHECK(problem.empty(), key, " ", problem, ", got ", value_text(member, spec));
}

// Writes member as the value of the key just emitted.
template <class T>
void emit(YAML::Emitter& out, const T& member, const Spec& spec) {
  if constexpr (std::is_same_v<T, std::string>) {
    out << YAML::DoubleQuoted << member;
  } else if constexpr (std::is_same_v<T, std::array<double, 2>>) {
    out << YAML::Flow << YAML::BeginSeq << yaml_number(member[0]) << yaml_number(member[1]) << YAML::EndSeq;
  } else if constexpr (std::is_same_v<T, double>) {
    out << yaml_number(member);
  } else {
    out << value_text(member, spec);
  }
}

// Every key of a table, in its order.
template <class C, class Table>
std::vector<std::string> keys_of(C& c, Table&& table) {
  std::vector<std::string> keys;
  table(c, [&](const char* key, const auto&, const Spec&) { keys.push_back(key); });
  return keys;
}

// Sets `key` of c from node through the table; false when the table has no such key.
template <class C, class Table>
bool assign_key(C& c, Table&& table, const std::string& where, const std::string& key, const YAML::Node& node) {
  bool found = false;
  table(c, [&](const char* name, auto& member, const Spec& spec) {
    if (found || key != name) return;
    found = true;
    assign(where, key, member, spec, node);
  });
  return found;
}

[[noreturn]] void unknown_key(const std::string& where, const std::string& key, const std::vector<std::string>& keys);

}  // namespace serpent::keys
