// Running the serpent binary from tests: exit code, stdout and stderr kept apart, and a child
// process that a test can signal.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace serpent::testing {

struct CliResult {
  int code = -1;  // exit status; -1 when the process did not exit normally
  std::string out, err;
};

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Starts `serpent args...` with stdout and stderr going to the given files; returns its pid.
inline pid_t spawn_serpent(const std::vector<std::string>& args, const std::string& out_path,
                           const std::string& err_path) {
  std::vector<std::string> argv_s = {SERPENT_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

inline int wait_exit_code(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs `serpent args...` to completion; scratch files go to `dir`.
inline CliResult run_serpent(const std::vector<std::string>& args, const std::string& dir) {
  static int counter = 0;
  const std::string base = dir + "/cli_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  CliResult r;
  const pid_t pid = spawn_serpent(args, base + ".out", base + ".err");
  if (pid < 0) return r;
  r.code = wait_exit_code(pid);
  r.out = read_text_file(base + ".out");
  r.err = read_text_file(base + ".err");
  std::remove((base + ".out").c_str());
  std::remove((base + ".err").c_str());
  return r;
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace serpent::testing
