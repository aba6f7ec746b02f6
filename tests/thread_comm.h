// A communicator for tests: W ranks as W threads of one process, exchanging through shared memory
// at barriers. Sums add the ranks' values in rank order in the tensor's own type, the definition
// the real backends are compared with. Collectives complete before they return (the work handles
// are already done); every rank must call them in the same order, as with MPI and NCCL.
#pragma once

#include <barrier>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "dist/comm.h"

namespace serpent::testing {

struct ThreadGroup {
  explicit ThreadGroup(int w) : world(w), sync(w), posted(size_t(w)) {}
  int world;
  std::barrier<> sync;
  std::vector<Tensor> posted;  // each rank's contribution to the collective in progress
};

class ThreadComm : public Communicator {
 public:
  ThreadComm(ThreadGroup& g, int rank) : Communicator(rank, g.world, Device::cpu()), g_(g) {}
  const char* backend() const override { return "threads"; }

  std::unique_ptr<CommWork> all_reduce_async(const Tensor& t) override {
    check_tensor("all_reduce", "the tensor", t, true);
    Tensor sum = exchange(t.clone(), [&](Tensor& out) { out = sum_of(0, t.numel()); });
    Tensor(t).copy_(sum);
    return done();
  }
  std::unique_ptr<CommWork> reduce_scatter_async(const Tensor& in, const Tensor& out) override {
    check_gather("reduce_scatter", out, in, true);
    Tensor mine = exchange(in.clone(), [&](Tensor& r) { r = sum_of(out.numel() * rank(), out.numel()); });
    Tensor(out).copy_(mine);
    return done();
  }
  std::unique_ptr<CommWork> all_gather_async(const Tensor& in, const Tensor& out) override {
    check_gather("all_gather", in, out, false);
    Tensor all = exchange(in.clone(), [&](Tensor& r) {
      r = Tensor::empty(out.shape(), out.dtype());
      for (int k = 0; k < world_size(); ++k) flat_view(r, in.numel() * k, in.numel()).copy_(g_.posted[size_t(k)]);
    });
    Tensor(out).copy_(all);
    return done();
  }
  std::unique_ptr<CommWork> broadcast_async(const Tensor& t, int root) override {
    check_tensor("broadcast", "the tensor", t, false);
    Tensor value = exchange(t.clone(), [&](Tensor& r) { r = g_.posted[size_t(root)].clone(); });
    Tensor(t).copy_(value);
    return done();
  }
  void barrier() override { g_.sync.arrive_and_wait(); }
  [[noreturn]] void abort_job(const std::string& message) override { throw Error(message); }

 private:
  struct Done : CommWork {
    void wait() override {}
    bool poll() override { return true; }
  };
  static std::unique_ptr<CommWork> done() { return std::make_unique<Done>(); }

  // Posts `mine`, lets `compute` read every rank's post once all are there, and returns its result
  // once every rank has computed its own.
  Tensor exchange(Tensor mine, const std::function<void(Tensor&)>& compute) {
    g_.posted[size_t(rank())] = std::move(mine);
    g_.sync.arrive_and_wait();
    Tensor result;
    compute(result);
    g_.sync.arrive_and_wait();
    return result;
  }

  // Elements [at, at + n) summed over the posted tensors in rank order.
  Tensor sum_of(int64_t at, int64_t n) const {
    Tensor out = flat_view(g_.posted[0], at, n).clone();
    for (int k = 1; k < world_size(); ++k) {
      const Tensor x = flat_view(g_.posted[size_t(k)], at, n);
      dispatch_float(out.dtype(), "ThreadComm", [&](auto z) {
        using T = decltype(z);
        T* o = out.data<T>();
        const T* a = x.data<T>();
        for (int64_t i = 0; i < n; ++i) o[i] += a[i];
      });
    }
    return out;
  }

  ThreadGroup& g_;
};

// Runs body(comm) on `world` threads, one ThreadComm each; rethrows the first failure.
inline void run_ranks(int world, const std::function<void(Communicator&)>& body) {
  ThreadGroup group(world);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      ThreadComm comm(group, r);
      try {
        body(comm);
      } catch (...) {
        errors[size_t(r)] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace serpent::testing
