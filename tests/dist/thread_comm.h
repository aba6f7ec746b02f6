// The data-parallel tests' communicator and run. ThreadComm: W ranks as W threads of one process,
// exchanging through shared memory at barriers. Sums add the ranks' values in rank order in the
// tensor's own type, the definition the real backends are compared with. Collectives complete
// before they return (the work handles are already done); every rank must call them in the same
// order, as with MPI and NCCL. Then a tiny model's training steps on W ranks (threads, MPI or NCCL)
// with the gradient buckets and plain or ZeRO-1 AdamW, which the dist and ZeRO-1 tests compare
// with one process doing the same work.
#pragma once

#include <barrier>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "dist/comm.h"
#include "dist/grad_buckets.h"
#include "optim/adamw.h"
#include "optim/zero1.h"
#include "tests/helpers.h"

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

// ---- a tiny model trained on W ranks ------------------------------------------------------------

inline MambaConfig tiny_config() {
  MambaConfig cfg;
  cfg.d_model = 16;
  cfg.n_layer = 2;
  cfg.vocab_size = 40;
  cfg.d_state = 4;
  return cfg;
}

// Micro-batch `index` of a stream of random tokens: (B, L) inputs and targets.
inline std::pair<Tensor, Tensor> batch_of(int64_t index, int64_t B = 2, int64_t L = 8) {
  Generator gen(1000 + uint64_t(index));
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < B * (L + 1); ++i) ids.push_back(int64_t(gen.uniform() * 40) % 40);
  std::vector<int64_t> x, y;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t) {
      x.push_back(ids[size_t(b * (L + 1) + t)]);
      y.push_back(ids[size_t(b * (L + 1) + t + 1)]);
    }
  return {from_vector(x, {B, L}), from_vector(y, {B, L})};
}

inline std::vector<std::vector<float>> grads_of(const MambaLM& m) {
  std::vector<std::vector<float>> out;
  for (const auto& [name, p] : m.named_parameters()) out.push_back(p.grad().to_vector<float>());
  return out;
}

inline std::vector<std::vector<float>> values_of(const MambaLM& m) {
  std::vector<std::vector<float>> out;
  for (const auto& [name, p] : m.named_parameters()) out.push_back(p.to_vector<float>());
  return out;
}

// The largest ||a_i - b_i|| / ||b_i|| over the tensors i.
inline double max_relative_difference(const std::vector<std::vector<float>>& a,
                                      const std::vector<std::vector<float>>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double d = 0, n = 0;
    for (size_t k = 0; k < a[i].size(); ++k) {
      d += (double(a[i][k]) - double(b[i][k])) * (double(a[i][k]) - double(b[i][k]));
      n += double(b[i][k]) * double(b[i][k]);
    }
    worst = std::max(worst, std::sqrt(d) / std::max(std::sqrt(n), 1e-30));
  }
  return worst;
}

// `steps` optimizer steps of a tiny model on `world` ranks (threads), rank r taking micro-batches
// 100 s + 10 r + i; with zero1 the moments are sharded. Returns every rank's parameters after
// each step, and (from rank 0) the gathered optimizer state at the end.
struct RunResult {
  std::vector<std::vector<std::vector<float>>> params;  // by step, rank 0's
  bool ranks_agree = true;
  NamedTensors state;
  int64_t shard = 0, full = 0;
};

// One rank's part of such a run: its parameters after each step; on rank 0 also the gathered
// optimizer state and the shard size.
inline std::vector<std::vector<std::vector<float>>> train_rank(Communicator& comm, bool zero1, int steps,
                                                               const NamedTensors* resume_state,
                                                               const std::vector<std::vector<float>>* resume_params,
                                                               int first_step, RunResult* rank0,
                                                               bool bf16_moments = false) {
  Generator gen(7);
  MambaLM m(tiny_config(), gen);
  const Device device = comm.device();
  m.to(device);
  if (resume_params) {
    NamedTensors sd = m.named_parameters();
    for (size_t i = 0; i < sd.size(); ++i) sd[i].second.copy_(from_vector((*resume_params)[i], sd[i].second.shape()));
  }
  AdamWConfig cfg{0.9, 0.95, 1e-8, 0.1};
  cfg.bf16_moments = bf16_moments;
  GradBuckets buckets(m.named_parameters(), comm,
                      {0.004, zero1 ? GradReduction::reduce_scatter : GradReduction::all_reduce});
  std::unique_ptr<ShardedAdamW> sharded;
  std::unique_ptr<AdamW> plain;
  if (zero1)
    sharded = std::make_unique<ShardedAdamW>(buckets, comm, cfg);
  else
    plain = std::make_unique<AdamW>(m.named_parameters(), cfg);
  if (resume_state) {
    if (sharded)
      sharded->load_state(*resume_state, first_step);
    else
      plain->load_state(*resume_state, first_step);
  }
  std::vector<std::vector<std::vector<float>>> out;
  const int accum = 6 / comm.world_size();  // the same 6 micro-batches per step on 1, 2, 3 or 6 ranks
  for (int s = first_step; s < first_step + steps; ++s) {
    buckets.zero_grad();
    for (int i = 0; i < accum; ++i) {
      auto [x, y] = batch_of(100 * s + comm.rank() * accum + i);
      x = x.to(device);
      y = y.to(device);
      buckets.set_sync(i == accum - 1);
      autograd::backward(scale(m.loss(x, y), 1.0 / accum));
    }
    buckets.finish();
    autograd::NoGradGuard no_grad;
    if (sharded)
      sharded->step(1e-2, sharded->grad_norm(), 0.5);
    else
      plain->step(1e-2, grad_norm_device(m.parameters()), 0.5);
    out.push_back(values_of(m));
  }
  NamedTensors st = sharded ? sharded->state() : plain->state();
  if (comm.rank() == 0 && rank0) {
    rank0->state.clear();
    for (const auto& [k, v] : st) rank0->state.emplace_back(k, v.to(Device::cpu()).clone());
    if (sharded) rank0->shard = sharded->shard_numel();
    rank0->full = m.num_parameters();
  }
  return out;
}

inline RunResult train_threads(int world, bool zero1, int steps, const NamedTensors* resume_state = nullptr,
                               const std::vector<std::vector<float>>* resume_params = nullptr, int first_step = 0,
                               bool bf16_moments = false) {
  RunResult out;
  std::vector<std::vector<std::vector<std::vector<float>>>> by_rank(static_cast<size_t>(world));
  run_ranks(world, [&](Communicator& comm) {
    by_rank[size_t(comm.rank())] = train_rank(comm, zero1, steps, resume_state, resume_params, first_step,
                                              comm.rank() == 0 ? &out : nullptr, bf16_moments);
  });
  out.params = by_rank[0];
  for (int r = 1; r < world; ++r) out.ranks_agree = out.ranks_agree && by_rank[size_t(r)] == by_rank[0];
  return out;
}

}  // namespace serpent::testing
