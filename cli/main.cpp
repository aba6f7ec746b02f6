// serpent: train, evaluate and sample Mamba language models. See `serpent --help`.
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

#include "cli/commands.h"
#include "core/error.h"

namespace {

void print_usage() {
  std::printf(
      "usage: serpent <command> [options]   (serpent <command> --help for each; serpent --version)\n\ncommands:\n");
  for (const auto& c : serpent::commands()) std::printf("  %-11s %s\n", c.name, c.summary);
}

void print_version() {
#ifdef SERPENT_CUDA
  const char* cuda = "on";
#else
  const char* cuda = "off";
#endif
#ifdef SERPENT_NCCL
  const char* nccl = "on";
#else
  const char* nccl = "off";
#endif
#ifdef SERPENT_MPI
  const char* mpi = "on";
#else
  const char* mpi = "off";
#endif
  std::printf("serpent %s (commit %s, %s build; CUDA %s, NCCL %s, MPI %s)\n", SERPENT_VERSION, SERPENT_COMMIT,
              SERPENT_BUILD_TYPE, cuda, nccl, mpi);
}

}  // namespace

// Exit codes: 0 success, 1 a user error (one line on stderr, as every command's errors), 3 a bug.
int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    print_usage();
    return argc < 2 ? 1 : 0;
  }
  const std::string name = argv[1];
  if (name == "--version" || name == "-V") {
    print_version();
    return 0;
  }
  for (const auto& c : serpent::commands()) {
    if (name != c.name) continue;
    try {
      return c.run(serpent::Args(argv + 2, argv + argc));
    } catch (const serpent::Error& e) {
      std::fprintf(stderr, "serpent %s: error: %s\n", c.name, serpent::printable(e.what()).c_str());
      return 1;
    } catch (const std::bad_alloc&) {
      // Sizes from inputs are checked before anything is allocated; this is the machine itself.
      std::fprintf(stderr, "serpent %s: error: out of memory\n", c.name);
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "serpent %s: internal error: %s\n", c.name, serpent::printable(e.what()).c_str());
      return 3;
    }
  }
  std::fprintf(stderr, "serpent: unknown command '%s' (see serpent --help)\n", serpent::printable(name).c_str());
  return 1;
}
