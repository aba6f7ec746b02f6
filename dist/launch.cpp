#include "dist/launch.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "core/error.h"

extern char** environ;

namespace serpent {

std::string self_executable() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  SERPENT_CHECK(n > 0, "cannot find the path of the running executable (/proc/self/exe)");
  return std::string(buf, size_t(n));
}

int pick_free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  SERPENT_CHECK(s >= 0, "cannot open a socket to find a free port: ", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  const bool ok = ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(s);
  SERPENT_CHECK(ok, "cannot find a free TCP port on 127.0.0.1; set MASTER_PORT");
  return ntohs(a.sin_port);
}

namespace {

// The workers' pids, read by the signal handler: filled before the handlers are installed.
pid_t* g_workers = nullptr;
int g_num_workers = 0;
volatile sig_atomic_t g_forwarded = 0;

extern "C" void forward_signal(int signum) {
  g_forwarded = signum;
  for (int i = 0; i < g_num_workers; ++i)
    if (g_workers[i] > 0) ::kill(g_workers[i], signum);
}

const char* signal_text(int signum) {
  const char* s = ::strsignal(signum);
  return s ? s : "unknown signal";
}

// name=value strings of this environment with `set` replacing or adding entries.
std::vector<std::string> environment_with(const std::map<std::string, std::string>& set) {
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    if (!set.count(kv.substr(0, kv.find('=')))) out.push_back(kv);
  }
  for (const auto& [k, v] : set) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  for (std::string& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

}  // namespace

int run_local_workers(const std::vector<std::string>& argv, int nproc,
                      const std::map<std::string, std::string>& extra_env, double grace_s) {
  SERPENT_CHECK(nproc >= 1, "--nproc must be at least 1, got ", nproc);
  SERPENT_CHECK(!argv.empty(), "run_local_workers: no program");
  const char* preset_port = std::getenv("MASTER_PORT");
  const std::string port = preset_port && *preset_port ? preset_port : std::to_string(pick_free_port());

  // Everything the children need is built before the first fork.
  std::vector<std::vector<std::string>> envs;
  for (int r = 0; r < nproc; ++r) {
    std::map<std::string, std::string> set = extra_env;
    set["RANK"] = set["LOCAL_RANK"] = std::to_string(r);
    set["WORLD_SIZE"] = set["LOCAL_WORLD_SIZE"] = std::to_string(nproc);
    set["MASTER_ADDR"] = "127.0.0.1";
    set["MASTER_PORT"] = port;
    if (!std::getenv("NCCL_NVLS_ENABLE") && !extra_env.count("NCCL_NVLS_ENABLE")) set["NCCL_NVLS_ENABLE"] = "0";
    envs.push_back(environment_with(set));
  }
  std::vector<std::string> args = argv;
  std::vector<char*> arg_p = pointers(args);
  std::vector<std::vector<char*>> env_p;
  for (auto& e : envs) env_p.push_back(pointers(e));

  static std::vector<pid_t> workers;
  workers.assign(size_t(nproc), -1);
  g_workers = workers.data();
  g_num_workers = nproc;
  g_forwarded = 0;
  struct sigaction sa {
  }, old_int, old_term, old_hup;
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  sigaction(SIGHUP, &sa, &old_hup);

  const pid_t parent = ::getpid();
  pid_t group = 0;
  std::string start_error;
  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      start_error = str_cat("cannot start worker ", r, ": fork failed (", std::strerror(errno), ")");
      break;
    }
    if (pid == 0) {
      ::setpgid(0, group);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(1);
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      sigemptyset(&dfl.sa_mask);
      sigaction(SIGINT, &dfl, nullptr);
      sigaction(SIGTERM, &dfl, nullptr);
      sigaction(SIGHUP, &dfl, nullptr);
      ::execve(arg_p[0], arg_p.data(), env_p[size_t(r)].data());
      std::fprintf(stderr, "serpent train --nproc: cannot run %s: %s\n", arg_p[0], std::strerror(errno));
      ::_exit(127);
    }
    ::setpgid(pid, group);  // also here, whichever of parent and child runs first
    if (group == 0) group = pid;
    workers[size_t(r)] = pid;
  }

  // Waits for the workers; the first failure stops the rest.
  int alive = 0;
  for (pid_t p : workers) alive += p > 0;
  int failed_rank = -1;
  std::string failure = start_error;
  auto deadline = std::chrono::steady_clock::time_point::max();
  const auto grace =
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(grace_s));
  if (!failure.empty()) {
    for (pid_t p : workers)
      if (p > 0) ::kill(p, SIGTERM);
    deadline = std::chrono::steady_clock::now() + grace;
  }
  bool killed = false;
  while (alive > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, failure.empty() ? 0 : WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) break;
    if (pid == 0) {  // stopping the others after a failure: give them the grace period
      if (!killed && std::chrono::steady_clock::now() > deadline) {
        ::kill(-group, SIGKILL);  // the workers and anything they started
        killed = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    int rank = -1;
    for (int r = 0; r < nproc; ++r)
      if (workers[size_t(r)] == pid) rank = r;
    if (rank < 0) continue;
    workers[size_t(rank)] = -1;
    --alive;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok || !failure.empty()) continue;
    failed_rank = rank;
    failure = WIFEXITED(status)
                  ? str_cat("exited with code ", WEXITSTATUS(status))
                  : str_cat("was killed by signal ", WTERMSIG(status), " (", signal_text(WTERMSIG(status)), ")");
    if (alive > 0) {
      for (pid_t p : workers)
        if (p > 0) ::kill(p, SIGTERM);
      deadline = std::chrono::steady_clock::now() + grace;
    }
  }

  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGHUP, &old_hup, nullptr);
  g_num_workers = 0;
  if (failure.empty()) return 0;
  if (failed_rank >= 0)
    std::fprintf(stderr, "serpent train --nproc %d: error: worker rank %d %s; stopped the other workers\n", nproc,
                 failed_rank, failure.c_str());
  else
    std::fprintf(stderr, "serpent train --nproc %d: error: %s; stopped the other workers\n", nproc, failure.c_str());
  return 1;
}

void exec_under_mpirun(const std::vector<std::string>& argv, int nproc) {
#ifdef SERPENT_MPI
  std::string mpirun = SERPENT_MPIEXEC;
  if (mpirun.empty() || ::access(mpirun.c_str(), X_OK) != 0) mpirun = "mpirun";
  std::vector<std::string> args = {mpirun};
  if (::geteuid() == 0) args.push_back("--allow-run-as-root");
  for (const char* a : {"--oversubscribe", "--bind-to", "none", "-x", "OMP_NUM_THREADS", "-np"}) args.push_back(a);
  args.push_back(std::to_string(nproc));
  args.insert(args.end(), argv.begin(), argv.end());
  if (!std::getenv("OMP_NUM_THREADS")) {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    ::setenv("OMP_NUM_THREADS", std::to_string(std::max(1u, cores / unsigned(nproc))).c_str(), 1);
  }
  std::vector<char*> p = pointers(args);
  std::fflush(stdout);
  std::fflush(stderr);
  ::execvp(p[0], p.data());
  fail("--nproc ", nproc, " on the cpu runs the workers with mpirun, but ", mpirun, " cannot be started (",
       std::strerror(errno), "); install openmpi-bin or start the ranks yourself (docs/DISTRIBUTED.md)");
#else
  (void)argv;
  fail("--nproc ", nproc, " on the cpu needs MPI, but this build of serpent has none, so a cpu run is a single ",
       "process: install MPI (Debian/Ubuntu: apt-get install libopenmpi-dev openmpi-bin, as scripts/deps.sh does) ",
       "and rebuild, or train on GPUs, or leave out --nproc");
#endif
}

}  // namespace serpent
