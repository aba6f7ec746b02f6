// Collective communication between the ranks of a data-parallel job (docs/DISTRIBUTED.md): one
// interface, three backends chosen by make_communicator():
//
//   local  world size 1, every operation a no-op (or a copy): the single-process trainer runs the
//          same code as the distributed one
//   mpi    CPU tensors, over MPI (dist/comm_mpi.cpp; built when CMake finds MPI)
//   nccl   CUDA tensors, over NCCL (dist/comm_nccl.cpp; built with the CUDA backend when NCCL is
//          found), one GPU per rank
//
// Every collective runs asynchronously and returns a CommWork; the plain calls are the async ones
// followed by wait(). What wait() guarantees is "later work sees the result":
//   - on the cpu it blocks until the operation is complete;
//   - on a GPU it makes the device's compute stream (core/cuda/runtime.h) wait for the operation,
//     which runs on a separate communication stream, and returns without blocking the host. The
//     operation itself starts only after the work already queued on the compute stream (an event
//     recorded there), so it reads the tensors as the compute stream left them.
//
// Buffers and the caching allocator. The allocator hands a freed block out again at once, which is
// only safe for work on the compute stream. A tensor under a GPU collective is therefore kept alive
// by its CommWork until wait() has ordered the compute stream after the collective: a block freed
// after that is reused only by kernels that follow the collective. Dropping a CommWork without
// wait() waits (the destructor calls it). So callers never free or overwrite a buffer that a
// collective still uses, and the gradient bucketer (dist/grad_buckets.h) keeps its flat buffers
// for the whole run anyway. The alternative, teaching the allocator about a second stream
// (recording an event per block and checking it on reuse), would cost every allocation a query;
// one owner per buffer is simpler and free.
//
// Failure. No operation waits forever: a collective that has not completed after timeout_s (a rank
// died, hangs, or stopped calling collectives) ends this process with an error on stderr naming the
// rank, the operation and the timeout, and brings the job down (MPI_Abort under mpirun; NCCL: a
// watchdog thread aborts the communicator). NCCL's asynchronous errors (a lost peer connection) end
// the process the same way as soon as the watchdog sees them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "dist/dist_env.h"

namespace serpent {

// An operation in flight.
class CommWork {
 public:
  virtual ~CommWork() = default;
  // Orders later work after the operation (see the top of this file). Idempotent.
  virtual void wait() = 0;
  // Lets the operation progress without blocking (MPI advances non-blocking collectives only
  // inside MPI calls); true once it is complete.
  virtual bool poll() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  // The device whose tensors this communicator moves (cpu for mpi, cuda:N for nccl).
  Device device() const { return device_; }
  virtual const char* backend() const = 0;

  // In-place sum over the ranks; t is f32, f64 or bf16 (summed as f32 per element on the cpu).
  virtual std::unique_ptr<CommWork> all_reduce_async(const Tensor& t) = 0;
  // in has world_size * n elements, out n: out = the sum over ranks of in's rank-th chunk of n.
  // f32, f64 or bf16; in and out must not overlap.
  virtual std::unique_ptr<CommWork> reduce_scatter_async(const Tensor& in, const Tensor& out) = 0;
  // in has n elements, out world_size * n: out's chunk r = rank r's in. Any dtype. in may be out's
  // own chunk (in place: in.data_ptr() == out's chunk rank()).
  virtual std::unique_ptr<CommWork> all_gather_async(const Tensor& in, const Tensor& out) = 0;
  // Rank root's t to every rank, in place. Any dtype.
  virtual std::unique_ptr<CommWork> broadcast_async(const Tensor& t, int root) = 0;
  // Returns once every rank has called barrier (host-side on every backend).
  virtual void barrier() = 0;
  // Prints "serpent: error: rank R: <message>" on stderr and ends this process with exit code 1,
  // taking the job down with it as far as the backend can (MPI_Abort; NCCL: the communicator is
  // aborted). For an error on one rank after which the others would wait in a collective until
  // their timeout.
  [[noreturn]] virtual void abort_job(const std::string& message) = 0;

  void all_reduce(const Tensor& t) { all_reduce_async(t)->wait(); }
  void reduce_scatter(const Tensor& in, const Tensor& out) { reduce_scatter_async(in, out)->wait(); }
  void all_gather(const Tensor& in, const Tensor& out) { all_gather_async(in, out)->wait(); }
  void broadcast(const Tensor& t, int root) { broadcast_async(t, root)->wait(); }

 protected:
  Communicator(int rank, int world_size, Device device) : rank_(rank), world_size_(world_size), device_(device) {}
  // Throws unless t is defined, on device() and (for reductions) of a dtype that can be summed.
  void check_tensor(const char* op, const char* name, const Tensor& t, bool reduction) const;
  void check_gather(const char* op, const Tensor& small, const Tensor& big, bool reduction) const;

 private:
  int rank_, world_size_;
  Device device_;
};

// Elements [start, start + n) of t as a 1-D tensor sharing its storage (not differentiable).
Tensor flat_view(const Tensor& t, int64_t start, int64_t n);

// The sum over ranks of one value per rank, added in rank order on every rank, so that the result
// is bitwise the same everywhere and from run to run (losses, token counts, norms). Waits.
double all_reduce_sum(Communicator& comm, double value);
// The same for several values at once (one collective).
std::vector<double> all_reduce_sum(Communicator& comm, const std::vector<double>& values);
// Rank root's bytes on every rank (the size may differ between ranks before the call).
std::string broadcast_bytes(Communicator& comm, const std::string& bytes, int root);

// An error that every rank of the job raises together (they agreed on it, see run_agreed): rank 0
// reports it and the other ranks exit with the same code, quietly.
class JobError : public Error {
 public:
  using Error::Error;
};

// Runs body on every rank. When it throws serpent::Error on one or more ranks, every rank throws
// JobError with the message of the lowest failing rank (prefixed "rank R: " when R is not 0), so
// no rank is left waiting in a collective for one that gave up. A collective itself.
void run_agreed(Communicator& comm, const std::function<void()>& body);

struct CommOptions {
  std::string backend = "auto";  // auto, local, mpi or nccl (auto: local for one rank, else by device)
  double timeout_s = 600;        // for every collective and for setting the job up
};

// The communicator of this process for tensors on `device`. auto picks local for a world of one,
// mpi for the cpu and nccl for a GPU; a backend this build lacks, or one that cannot move the
// device's tensors, is an error that says what to install or change. nccl and mpi at world size 1
// are allowed (to measure their overhead).
std::unique_ptr<Communicator> make_communicator(const DistEnv& env, Device device, const CommOptions& options);

// Prints "serpent: error: rank R: message" on stderr and ends the process at once (exit code 1,
// no destructors: other threads may be stuck in a collective).
[[noreturn]] void exit_with_error(int rank, const std::string& message);

// Whether this build has each backend.
bool have_mpi();
bool have_nccl();

// The backends' constructors (in their own files; they exist only when built).
std::unique_ptr<Communicator> make_local_communicator(Device device);
std::unique_ptr<Communicator> make_mpi_communicator(const DistEnv& env, const CommOptions& options);
std::unique_ptr<Communicator> make_nccl_communicator(const DistEnv& env, Device device, const CommOptions& options);

}  // namespace serpent
