// A small command-line parser for the subcommands: --name value, --name=value and boolean
// --flag options, positional arguments, generated --help, and errors that name the option.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace serpent {

class ArgParser {
 public:
  ArgParser(std::string command, std::string description);

  // Declare options before parse(). `value_name` empty means a boolean flag.
  ArgParser& option(const std::string& name, const std::string& value_name, const std::string& help,
                    const std::string& default_value = "");
  ArgParser& multi_option(const std::string& name, const std::string& value_name, const std::string& help);
  ArgParser& positional(const std::string& name, const std::string& help, bool required = true);
  // Marks the option declared last as required: --help says so, and parse() reports every missing
  // one at once, in the order the help lists them.
  ArgParser& required();

  // Returns false when --help was asked for (the help was printed); throws on bad input.
  bool parse(const Args& args);

  bool has(const std::string& name) const;
  std::string get(const std::string& name) const;
  std::vector<std::string> get_all(const std::string& name) const;
  int64_t get_int(const std::string& name) const;
  double get_double(const std::string& name) const;
  bool flag(const std::string& name) const { return has(name); }
  std::string help() const;

 private:
  struct Spec {
    std::string name, value_name, help, default_value;
    bool multi = false;
    bool required = false;
  };
  const Spec* find(const std::string& name) const;

  std::string command_, description_;
  std::vector<Spec> specs_;
  std::vector<std::pair<std::string, std::string>> positional_specs_;
  size_t required_positionals_ = 0;
  std::map<std::string, std::vector<std::string>> values_;
};

}  // namespace serpent
