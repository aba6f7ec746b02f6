#include "train/commands.h"

namespace serpent {

int cmd_bench(const Args& args);

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"bench", "throughput and per-op timings of a model on the cpu or a GPU", cmd_bench},
  };
  return table;
}

}  // namespace serpent
