// Starting other processes from tests (mpirun, serpent, this test binary as an MPI rank): extra
// environment variables, output to a file, a deadline after which the whole process group is
// killed so that a hang fails the test instead of stalling the suite.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace serpent::testing {

struct Child {
  pid_t pid = -1;
  std::string output_path;
};

// Starts argv[0] (a path) with `env` added to this process's environment, stdout and stderr both
// to output_path, in a process group of its own.
inline Child start_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                           const std::string& output_path) {
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    if (!env.count(kv.substr(0, kv.find('=')))) env_s.push_back(kv);
  }
  for (const auto& [k, v] : env) env_s.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (std::string& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_s = argv;
  for (std::string& s : argv_s) args.push_back(s.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  Child c;
  c.output_path = output_path;
  if (posix_spawn(&c.pid, args[0], &fa, &attr, args.data(), envp.data()) != 0) c.pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return c;
}

// Waits up to timeout_s; past it the child's process group is killed and -2 returned. Otherwise
// the exit code, or -1 when it died of a signal.
inline int wait_process(const Child& c, double timeout_s) {
  if (c.pid < 0) return -3;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(c.pid, &status, WNOHANG);
    if (r == c.pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(-c.pid, SIGKILL);
      ::waitpid(c.pid, &status, 0);
      return -2;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct ProcessResult {
  int code = -3;
  std::string output;
};

inline ProcessResult run_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                                 const std::string& output_path, double timeout_s) {
  ProcessResult r;
  r.code = wait_process(start_process(argv, env, output_path), timeout_s);
  r.output = read_file(output_path);
  return r;
}

// This test binary's own path (to run some of its tests as MPI ranks).
inline std::string self_path() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

// mpirun with what a test run as root on a small machine needs.
inline std::vector<std::string> mpirun_argv(int ranks) {
  std::vector<std::string> a = {SERPENT_MPIEXEC, "--oversubscribe", "--bind-to", "none", "-np", std::to_string(ranks)};
  if (::geteuid() == 0) a.insert(a.begin() + 1, "--allow-run-as-root");
  return a;
}

// A TCP port nothing listens on right now.
inline int free_port_for_test() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

// The pids whose parent is `parent` (from /proc), in increasing order.
inline std::vector<pid_t> child_processes(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = read_file(entry.path().string() + "/stat");
    // pid (comm) state ppid ...: the command may hold spaces, so read after the last ')'.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent)
      out.push_back(pid_t(std::stol(name)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A scratch folder unique to this process and test.
inline std::string scratch_dir(const std::string& name) {
  const std::string dir = "/tmp/serpent_test_" + std::to_string(::getpid()) + "_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace serpent::testing
