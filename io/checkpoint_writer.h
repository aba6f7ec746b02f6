// Saving checkpoints in the background. The trainer hands over a Checkpoint whose tensors are
// host copies (a snapshot: the step goes on changing the live ones) and goes back to training
// while a thread writes the file with save_checkpoint (atomic, so a crash during the write leaves
// the previous checkpoint as the newest valid one) and prunes the folder. At most one save is in
// flight: a new one first waits for the last. wait() is where a failed background save surfaces.
#pragma once

#include <chrono>
#include <exception>
#include <string>
#include <thread>

#include "io/checkpoint.h"

namespace serpent {

class CheckpointWriter {
 public:
  // async false: save() writes before it returns (the same files, the same order of work).
  explicit CheckpointWriter(bool async) : async_(async) {}
  ~CheckpointWriter();  // waits for the save in flight (its error, if any, is lost: call wait())
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Writes c to path, then prunes path's folder to keep_last checkpoints.
  void save(const std::string& path, Checkpoint c, int64_t keep_last);
  // Blocks until no save is in flight; rethrows the error of a failed one.
  void wait();
  bool in_flight() const { return thread_.joinable(); }
  // Seconds the last finished save took to write (0 before the first).
  double last_write_seconds() const { return write_seconds_; }

 private:
  bool async_;
  std::thread thread_;
  std::exception_ptr error_;
  double write_seconds_ = 0;
};

// A copy of every tensor on the host, for a snapshot the live tensors can change under.
NamedTensors host_copies(const NamedTensors& tensors);

}  // namespace serpent
