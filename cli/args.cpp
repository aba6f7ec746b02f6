#include "cli/args.h"

#include <cstdio>
#include <sstream>

#include "core/error.h"

namespace serpent {

ArgParser::ArgParser(std::string command, std::string description)
    : command_(std::move(command)), description_(std::move(description)) {}

ArgParser& ArgParser::option(const std::string& name, const std::string& value_name, const std::string& help,
                             const std::string& default_value) {
  specs_.push_back({name, value_name, help, default_value, false});
  return *this;
}

ArgParser& ArgParser::multi_option(const std::string& name, const std::string& value_name, const std::string& help) {
  specs_.push_back({name, value_name, help, "", true});
  return *this;
}

ArgParser& ArgParser::positional(const std::string& name, const std::string& help, bool required) {
  positional_specs_.emplace_back(name, help);
  if (required) required_positionals_ = positional_specs_.size();
  return *this;
}

ArgParser& ArgParser::required() {
  SERPENT_CHECK(!specs_.empty(), "ArgParser::required: no option declared yet");
  specs_.back().required = true;
  return *this;
}

const ArgParser::Spec* ArgParser::find(const std::string& name) const {
  for (const Spec& s : specs_)
    if (s.name == name) return &s;
  return nullptr;
}

bool ArgParser::parse(const Args& args) {
  std::vector<std::string> positionals;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    if (a.rfind("--", 0) != 0 || a.size() == 2) {
      positionals.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    const Spec* spec = find(name);
    SERPENT_CHECK(spec, "unknown option --", name, " (see serpent ", command_, " --help)");
    if (spec->value_name.empty()) {
      SERPENT_CHECK(!inline_value, "option --", name, " takes no value");
      values_[name].push_back("1");
      continue;
    }
    if (!inline_value) {
      SERPENT_CHECK(i + 1 < args.size(), "option --", name, " needs a value (", spec->value_name, ")");
      value = args[++i];
    }
    if (!spec->multi) values_[name].clear();
    values_[name].push_back(value);
    // Multi-value options also take the plain words that follow (--input a b c).
    while (spec->multi && i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) values_[name].push_back(args[++i]);
  }
  SERPENT_CHECK(positionals.size() >= required_positionals_, "missing argument ",
                positional_specs_.size() > positionals.size() ? positional_specs_[positionals.size()].first : "",
                " (see serpent ", command_, " --help)");
  SERPENT_CHECK(positionals.size() <= positional_specs_.size(), "unexpected argument '",
                positionals[positional_specs_.size()], "' (see serpent ", command_, " --help)");
  for (size_t i = 0; i < positionals.size(); ++i) values_[positional_specs_[i].first] = {positionals[i]};
  std::string missing;
  int n_missing = 0;
  for (const Spec& s : specs_)
    if (s.required && !values_.count(s.name)) missing += (n_missing++ ? ", --" : "--") + s.name;
  SERPENT_CHECK(n_missing == 0, "missing required option", n_missing > 1 ? "s " : " ", missing, " (see serpent ",
                command_, " --help)");
  for (const Spec& s : specs_)
    if (!values_.count(s.name) && !s.default_value.empty()) values_[s.name] = {s.default_value};
  return true;
}

bool ArgParser::has(const std::string& name) const {
  return values_.count(name) > 0;
}

std::string ArgParser::get(const std::string& name) const {
  auto it = values_.find(name);
  SERPENT_CHECK(it != values_.end() && !it->second.empty(), "missing required option --", name, " (see serpent ",
                command_, " --help)");
  return it->second.back();
}

std::vector<std::string> ArgParser::get_all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

int64_t ArgParser::get_int(const std::string& name) const {
  const std::string v = get(name);
  try {
    size_t used = 0;
    int64_t x = std::stoll(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  fail("option --", name, " expects an integer, got '", v, "'");
}

double ArgParser::get_double(const std::string& name) const {
  const std::string v = get(name);
  try {
    size_t used = 0;
    double x = std::stod(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  fail("option --", name, " expects a number, got '", v, "'");
}

namespace {

// Text wrapped to `width` columns, every line after the first indented by `indent` spaces; words
// are kept whole and explicit line breaks kept.
std::string wrapped(const std::string& text, size_t indent, size_t width = 100) {
  std::string out, line;
  auto flush = [&] {
    if (!out.empty()) {
      out += '\n';
      out.append(indent, ' ');
    }
    out += line;
    line.clear();
  };
  std::istringstream paragraphs(text);
  for (std::string para; std::getline(paragraphs, para);) {
    std::istringstream words(para);
    for (std::string w; words >> w;) {
      if (!line.empty() && indent + line.size() + 1 + w.size() > width) flush();
      line += (line.empty() ? "" : " ") + w;
    }
    flush();
  }
  return out;
}

}  // namespace

std::string ArgParser::help() const {
  std::ostringstream out;
  out << "usage: serpent " << command_;
  for (size_t i = 0; i < positional_specs_.size(); ++i)
    out << (i < required_positionals_ ? " " : " [") << positional_specs_[i].first
        << (i < required_positionals_ ? "" : "]");
  for (const Spec& s : specs_)
    if (s.required) out << " --" << s.name << " " << s.value_name << (s.multi ? " ..." : "");
  out << " [options]\n\n" << wrapped(description_, 0) << "\n";
  if (!positional_specs_.empty()) {
    out << "\narguments:\n";
    for (const auto& [name, h] : positional_specs_) out << "  " << name << "\n      " << wrapped(h, 6) << "\n";
  }
  out << "\noptions:\n";
  for (const Spec& s : specs_) {
    std::string h = s.help;
    if (s.required) h = "(required) " + h;
    if (!s.default_value.empty()) h += " (default " + s.default_value + ")";
    out << "  --" << s.name << (s.value_name.empty() ? "" : " " + s.value_name) << (s.multi ? " ..." : "") << "\n      "
        << wrapped(h, 6) << "\n";
  }
  out << "  --help\n      show this help\n";
  return out.str();
}

}  // namespace serpent
