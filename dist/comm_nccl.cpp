// The NCCL communicator for GPU tensors (dist/comm.h), one GPU per rank, built with the CUDA
// backend when CMake finds NCCL.
//
// Setup: rank 0 makes the NCCL unique id and sends it to the others over the TCP rendezvous at
// MASTER_ADDR:MASTER_PORT (dist/tcp_bootstrap.h); every rank then joins with ncclCommInitRank
// (under a deadline: it blocks until all ranks have joined). NCCL_NVLS_ENABLE defaults to 0 here
// (NVLink SHARP multicast is off unless the environment asks for it).
//
// Streams: each collective waits for an event recorded on the device's compute stream, runs on this
// communicator's own high-priority stream, and records a completion event there; wait() makes the
// compute stream wait for that event (dist/comm.h explains how this keeps the caching allocator's
// one-stream assumption true).
//
// Failure: a watchdog thread polls every in-flight collective's completion event and NCCL's
// asynchronous error state. A collective that has been ready to run (its inputs done) for longer
// than the timeout without completing, or an asynchronous NCCL error, ends the process with a
// message naming the rank and the operation; the main thread may be blocked in a CUDA call at that
// moment, so the watchdog exits the process itself. While the main thread waits in the driver
// (a synchronize, a copy to the host) it holds a driver lock that cudaEventDestroy also takes, so
// the watchdog only queries events: the finished ones go back to the main thread to destroy.
#ifdef SERPENT_NCCL

#include <nccl.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "core/cuda/runtime.h"
#include "core/error.h"
#include "dist/comm.h"
#include "dist/tcp_bootstrap.h"
#include "dist/watchdog.h"

namespace serpent {

namespace {

void nccl_check(ncclResult_t r, const char* what) {
  if (r == ncclSuccess) return;
  const char* last = ncclGetLastError(nullptr);
  fail("NCCL error in ", what, ": ", ncclGetErrorString(r), last && *last ? str_cat(" (", last, ")") : "");
}

ncclDataType_t nccl_type(DType dt) {
  switch (dt) {
    case DType::f32:
      return ncclFloat32;
    case DType::f64:
      return ncclFloat64;
    case DType::bf16:
      return ncclBfloat16;
    case DType::i32:
      return ncclInt32;
    case DType::i64:
      return ncclInt64;
  }
  return ncclInt8;
}

using Clock = std::chrono::steady_clock;

// A CUDA event shared by a CommWork and the watchdog, destroyed when both are done with it.
struct Event {
  cudaEvent_t e = nullptr;
  Event() { CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming)); }
  ~Event() { cudaEventDestroy(e); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
};

struct InFlight {
  std::shared_ptr<Event> ready, done;  // recorded on the compute stream / after the collective
  std::string what;
  Clock::time_point ready_since{};  // when the watchdog first saw `ready` complete
  bool started = false;
};

class NcclCommunicator;

class NcclWork : public CommWork {
 public:
  NcclWork(int device, std::shared_ptr<Event> done, std::vector<Tensor> keep)
      : device_(device), done_(std::move(done)), keep_(std::move(keep)) {}
  ~NcclWork() override { wait(); }
  void wait() override {
    if (!done_) return;
    CUDA_CHECK(cudaStreamWaitEvent(cuda::stream(device_), done_->e, 0));
    done_.reset();
    keep_.clear();  // freed blocks are now reused only after the collective
  }
  bool poll() override { return !done_ || cudaEventQuery(done_->e) == cudaSuccess; }

 private:
  int device_;
  std::shared_ptr<Event> done_;
  std::vector<Tensor> keep_;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(const DistEnv& env, Device device, const CommOptions& options)
      : Communicator(env.rank, env.world_size, device), dev_(device.index), timeout_s_(options.timeout_s) {
    ::setenv("NCCL_NVLS_ENABLE", "0", 0);
    cuda::stream(dev_);  // creates the device's context and makes it current
    ncclUniqueId id{};
    {
      DistEnv where = env;
      if (where.master_addr.empty() && env.world_size == 1) where.master_addr = "127.0.0.1";
      if (where.master_port == 0 && env.world_size == 1) where.master_port = kDefaultMasterPort;
      TcpRendezvous rendezvous(where, "nccl", timeout_s_);
      std::string bytes;
      if (env.rank == 0) {
        nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
        bytes.assign(reinterpret_cast<const char*>(&id), sizeof id);
      }
      bytes = rendezvous.broadcast(bytes);
      SERPENT_CHECK(bytes.size() == sizeof id, "rank ", env.rank, ": the NCCL id from rank 0 has ", bytes.size(),
                    " bytes, expected ", sizeof id, " (a different NCCL version on rank 0?)");
      std::memcpy(&id, bytes.data(), sizeof id);
    }
    {
      ExitAfter guard(timeout_s_, env.rank,
                      str_cat("creating the NCCL communicator of ", env.world_size, " ranks on cuda:", dev_,
                              " did not finish within ", timeout_s_, " s: a rank has died or hangs"));
      nccl_check(ncclCommInitRank(&comm_, env.world_size, id, env.rank), "ncclCommInitRank");
    }
    int least = 0, greatest = 0;
    CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    CUDA_CHECK(cudaStreamCreateWithPriority(&stream_, cudaStreamNonBlocking, greatest));
    CUDA_CHECK(cudaMalloc(&barrier_word_, sizeof(float)));
    watchdog_ = std::thread([this] { watch(); });
  }

  ~NcclCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    watchdog_.join();
    cudaSetDevice(dev_);
    cudaStreamSynchronize(stream_);
    ncclCommDestroy(comm_);
    cudaFree(barrier_word_);
    cudaStreamDestroy(stream_);
  }

  const char* backend() const override { return "nccl"; }

  std::unique_ptr<CommWork> all_reduce_async(const Tensor& t) override {
    check_tensor("all_reduce", "the tensor", t, true);
    return launch(str_cat("all_reduce of ", t.str()), {t}, [&] {
      return ncclAllReduce(t.data_ptr(), t.data_ptr(), size_t(t.numel()), nccl_type(t.dtype()), ncclSum, comm_,
                           stream_);
    });
  }

  std::unique_ptr<CommWork> reduce_scatter_async(const Tensor& in, const Tensor& out) override {
    check_gather("reduce_scatter", out, in, true);
    const char* a = static_cast<const char*>(in.data_ptr());
    const char* b = static_cast<const char*>(out.data_ptr());
    SERPENT_CHECK(b + out.nbytes() <= a || a + in.nbytes() <= b, "reduce_scatter: the input and output overlap");
    return launch(str_cat("reduce_scatter of ", in.str()), {in, out}, [&] {
      return ncclReduceScatter(in.data_ptr(), out.data_ptr(), size_t(out.numel()), nccl_type(in.dtype()), ncclSum,
                               comm_, stream_);
    });
  }

  std::unique_ptr<CommWork> all_gather_async(const Tensor& in, const Tensor& out) override {
    check_gather("all_gather", in, out, false);
    // Bytes, so any dtype goes; in place when `in` is out's own chunk (NCCL detects it).
    return launch(str_cat("all_gather into ", out.str()), {in, out},
                  [&] { return ncclAllGather(in.data_ptr(), out.data_ptr(), in.nbytes(), ncclInt8, comm_, stream_); });
  }

  std::unique_ptr<CommWork> broadcast_async(const Tensor& t, int root) override {
    check_tensor("broadcast", "the tensor", t, false);
    SERPENT_CHECK(root >= 0 && root < world_size(), "broadcast: root ", root, " is not a rank of ", world_size());
    return launch(str_cat("broadcast of ", t.str()), {t}, [&] {
      return ncclBroadcast(t.data_ptr(), t.data_ptr(), t.nbytes(), ncclInt8, root, comm_, stream_);
    });
  }

  void barrier() override {
    auto work = launch("barrier", {}, [&] {
      return ncclAllReduce(barrier_word_, barrier_word_, 1, ncclFloat32, ncclSum, comm_, stream_);
    });
    // The host waits here; the watchdog ends a barrier that a missing rank never completes.
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  [[noreturn]] void abort_job(const std::string& message) override { exit_with_error(rank(), message); }

 private:
  // Queues one collective on the communication stream after the compute stream's work so far.
  template <class F>
  std::unique_ptr<CommWork> launch(std::string what, std::vector<Tensor> keep, F&& call) {
    auto ready = std::make_shared<Event>(), done = std::make_shared<Event>();
    CUDA_CHECK(cudaEventRecord(ready->e, cuda::stream(dev_)));
    CUDA_CHECK(cudaStreamWaitEvent(stream_, ready->e, 0));
    nccl_check(call(), what.c_str());
    CUDA_CHECK(cudaEventRecord(done->e, stream_));
    std::vector<InFlight> finished;  // destroyed here, after the lock
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight_.push_back({ready, done, std::move(what)});
      finished.swap(finished_);
    }
    return std::make_unique<NcclWork>(dev_, std::move(done), std::move(keep));
  }

  void watch() {
    cudaSetDevice(dev_);
    const auto period = std::chrono::duration<double>(std::min(1.0, std::max(0.01, timeout_s_ / 20)));
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, period, [this] { return stopping_; })) {
      ncclResult_t async = ncclSuccess;
      if (ncclCommGetAsyncError(comm_, &async) == ncclSuccess && async != ncclSuccess && async != ncclInProgress) {
        const char* last = ncclGetLastError(comm_);
        exit_with_error(rank(),
                        str_cat("NCCL reported an error on cuda:", dev_, ": ", ncclGetErrorString(async),
                                last && *last ? str_cat(" (", last, ")") : "", "; another rank has probably died"));
      }
      const auto now = Clock::now();
      while (!in_flight_.empty()) {
        InFlight& f = in_flight_.front();
        const cudaError_t d = cudaEventQuery(f.done->e);
        if (d == cudaSuccess) {
          finished_.push_back(std::move(f));
          in_flight_.pop_front();
          continue;
        }
        if (d != cudaErrorNotReady)
          exit_with_error(rank(), str_cat(f.what, " failed on cuda:", dev_, ": ", cudaGetErrorString(d)));
        if (!f.started && cudaEventQuery(f.ready->e) == cudaSuccess) {
          f.started = true;
          f.ready_since = now;
        }
        if (f.started && std::chrono::duration<double>(now - f.ready_since).count() > timeout_s_)
          exit_with_error(rank(), str_cat(f.what, " did not complete within ", timeout_s_,
                                          " s (dist.timeout_s): another rank has died, hangs, or stopped taking part; "
                                          "stopping"));
        break;  // the stream runs them in order: the later ones are not done either
      }
    }
  }

  int dev_;
  double timeout_s_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  float* barrier_word_ = nullptr;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::deque<InFlight> in_flight_;
  std::vector<InFlight> finished_;  // done collectives whose events the main thread destroys
  std::thread watchdog_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(const DistEnv& env, Device device, const CommOptions& options) {
  SERPENT_CHECK(device.is_cuda(), "the nccl backend needs a CUDA device, got ", device.str());
  return std::make_unique<NcclCommunicator>(env, device, options);
}

}  // namespace serpent

#endif  // SERPENT_NCCL
