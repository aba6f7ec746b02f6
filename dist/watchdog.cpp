#include "dist/watchdog.h"

#include <chrono>

#include "dist/comm.h"

namespace serpent {

ExitAfter::ExitAfter(double timeout_s, int rank, std::string message) {
  thread_ = std::thread([this, timeout_s, rank, message = std::move(message)] {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::duration<double>(timeout_s), [this] { return done_; }))
      exit_with_error(rank, message);
  });
}

ExitAfter::~ExitAfter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

}  // namespace serpent
