// A deadline for a blocking step that has no timeout of its own (connecting the ranks of a job,
// creating an NCCL communicator): if the guard is still alive after timeout_s, the process ends
// with exit_with_error (dist/comm.h), naming the step. Destroying the guard disarms it.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace serpent {

class ExitAfter {
 public:
  ExitAfter(double timeout_s, int rank, std::string message);
  ~ExitAfter();
  ExitAfter(const ExitAfter&) = delete;
  ExitAfter& operator=(const ExitAfter&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace serpent
