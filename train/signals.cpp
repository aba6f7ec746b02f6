#include "train/signals.h"

#include <atomic>
#include <csignal>
#include <cstdio>

namespace serpent {

namespace {

std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "the flag is written from a signal handler");

struct sigaction g_old_int, g_old_term, g_old_hup;

extern "C" void on_stop_signal(int signum) {
  int expected = 0;
  if (g_signal.compare_exchange_strong(expected, signum)) return;
  // Asked twice: stop now, with the signal's default action (sigaction and raise are
  // async-signal-safe).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(signum, &dfl, nullptr);
  raise(signum);
}

}  // namespace

StopOnSignals::StopOnSignals() {
  g_signal.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // reads and writes in flight carry on; the loop polls the flag
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
  sigaction(SIGHUP, &sa, &g_old_hup);  // a closed terminal or ssh session: the same clean stop
}

StopOnSignals::~StopOnSignals() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
  sigaction(SIGHUP, &g_old_hup, nullptr);
}

int stop_signal() {
  return g_signal.load();
}

const char* signal_name(int signum) {
  if (signum == SIGINT) return "SIGINT";
  if (signum == SIGTERM) return "SIGTERM";
  if (signum == SIGHUP) return "SIGHUP";
  static thread_local char buf[32];
  std::snprintf(buf, sizeof buf, "signal %d", signum);
  return buf;
}

}  // namespace serpent
