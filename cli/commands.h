// The serpent subcommands. Each takes its arguments after the subcommand name, prints its own
// --help, and returns the process exit code; user errors are thrown as serpent::Error and turned
// into one line on stderr by main().
#pragma once

#include <string>
#include <vector>

namespace serpent {

using Args = std::vector<std::string>;

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const Args& args);
};

// The table main() dispatches on, in the order `serpent --help` lists them.
const std::vector<Command>& commands();

}  // namespace serpent
