// Saving checkpoints in the background. The trainer hands over a Checkpoint whose tensors are
// host copies (a snapshot: the step goes on changing the live ones) and goes back to training
// while a thread writes the file with save_checkpoint (atomic, so a crash during the write leaves
// the previous checkpoint as the newest valid one) and prunes the folder. At most one save is in
// flight: a new one first waits for the last. wait() is where a failed background save surfaces.
#pragma once

#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

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

// Host copies of GPU tensors for checkpoints, taken into one page-locked buffer that is kept from
// one checkpoint to the next. Copies into page-locked memory run at the bus's speed; a fresh
// pageable allocation per tensor ran at 1.7 GB/s on an H200 machine, a 9.8 s training stall per
// checkpoint at mamba-1.4b (docs/PERF.md). Pinning gigabytes takes seconds, so reserve() starts it
// in a background thread when training starts.
class HostStaging {
 public:
  HostStaging() = default;
  ~HostStaging();
  HostStaging(const HostStaging&) = delete;
  HostStaging& operator=(const HostStaging&) = delete;

  // The buffer size that copy() needs for these tensors.
  static size_t bytes_for(const NamedTensors& tensors);
  // Starts allocating a buffer of `bytes` in the background; copy() waits for it.
  void reserve(size_t bytes);
  // Copies every tensor of every group to the host, in order, and returns views of the buffer
  // with the same names and shapes. The buffer is reused by the next call only once no view of
  // this one is alive (the save that used them has finished); otherwise a new one is allocated.
  std::vector<NamedTensors> copy(const std::vector<NamedTensors>& groups);

  bool pinned() const { return buffer_ && buffer_->pinned(); }
  size_t capacity() const { return buffer_ ? buffer_->nbytes() : 0; }
  // Seconds the last copy() spent allocating or waiting for the buffer, and copying.
  double last_alloc_seconds() const { return alloc_seconds_; }
  double last_copy_seconds() const { return copy_seconds_; }

 private:
  std::shared_ptr<Storage> buffer_;
  std::future<std::shared_ptr<Storage>> pending_;
  double alloc_seconds_ = 0, copy_seconds_ = 0;
};

}  // namespace serpent
