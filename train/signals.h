// Graceful stop on SIGINT / SIGTERM / SIGHUP: while a StopOnSignals guard lives, the first of these
// signals only sets a flag that the trainer polls between steps (it then finishes the step,
// writes a checkpoint and exits 0); a second one ends the process at once, as it would have
// without the guard.
#pragma once

namespace serpent {

class StopOnSignals {
 public:
  StopOnSignals();   // installs the handlers and clears the flag
  ~StopOnSignals();  // restores the previous handlers
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;
};

// The signal number that asked to stop (SIGINT, SIGTERM or SIGHUP), or 0 when none has arrived.
int stop_signal();
// "SIGINT", "SIGTERM" or "signal N".
const char* signal_name(int signum);

}  // namespace serpent
