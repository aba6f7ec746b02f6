// The backend-independent parts of dist/comm.h: argument checks, the local (world size 1)
// communicator, the deterministic scalar sums, and the choice of backend.
#include "dist/comm.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/creation.h"
#include "core/error.h"
#include "core/storage.h"

namespace serpent {

Tensor flat_view(const Tensor& t, int64_t start, int64_t n) {
  SERPENT_CHECK(start >= 0 && n >= 0 && start + n <= t.numel(), "flat_view: elements [", start, ", ", start + n,
                ") are outside ", t.str());
  Tensor v = t.detach();
  v.impl().offset += start;
  v.impl().shape = {n};
  return v;
}

void Communicator::check_tensor(const char* op, const char* name, const Tensor& t, bool reduction) const {
  SERPENT_CHECK(t.defined(), op, ": ", name, " is undefined");
  SERPENT_CHECK(t.device() == device_, op, ": ", name, " is ", t.str(), " but this ", backend(),
                " communicator moves tensors on ", device_.str());
  if (reduction)
    SERPENT_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64 || t.dtype() == DType::bf16, op, ": ", name,
                  " is ", t.str(), "; sums are over f32, f64 or bf16 tensors");
}

void Communicator::check_gather(const char* op, const Tensor& small, const Tensor& big, bool reduction) const {
  check_tensor(op, "the chunk", small, reduction);
  check_tensor(op, "the whole", big, reduction);
  SERPENT_CHECK(small.dtype() == big.dtype(), op, ": ", small.str(), " and ", big.str(), " differ in dtype");
  SERPENT_CHECK(big.numel() == small.numel() * world_size_, op, ": the whole ", big.str(), " must hold world size ",
                world_size_, " x the chunk's ", small.numel(), " elements");
}

void exit_with_error(int rank, const std::string& message) {
  std::fprintf(stderr, "serpent: error: rank %d: %s\n", rank, message.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

namespace {

class DoneWork : public CommWork {
 public:
  void wait() override {}
  bool poll() override { return true; }
};

// World size 1: sums and gathers over one rank are the tensors themselves.
class LocalCommunicator : public Communicator {
 public:
  explicit LocalCommunicator(Device device) : Communicator(0, 1, device) {}
  const char* backend() const override { return "local"; }

  std::unique_ptr<CommWork> all_reduce_async(const Tensor& t) override {
    check_tensor("all_reduce", "the tensor", t, true);
    return std::make_unique<DoneWork>();
  }
  std::unique_ptr<CommWork> reduce_scatter_async(const Tensor& in, const Tensor& out) override {
    check_gather("reduce_scatter", out, in, true);
    copy_if_apart(out, in);
    return std::make_unique<DoneWork>();
  }
  std::unique_ptr<CommWork> all_gather_async(const Tensor& in, const Tensor& out) override {
    check_gather("all_gather", in, out, false);
    copy_if_apart(out, in);
    return std::make_unique<DoneWork>();
  }
  std::unique_ptr<CommWork> broadcast_async(const Tensor& t, int root) override {
    check_tensor("broadcast", "the tensor", t, false);
    SERPENT_CHECK(root == 0, "broadcast: root ", root, " is not a rank of a world of 1");
    return std::make_unique<DoneWork>();
  }
  void barrier() override {}
  [[noreturn]] void abort_job(const std::string& message) override { exit_with_error(0, message); }

 private:
  static void copy_if_apart(const Tensor& dst, const Tensor& src) {
    if (dst.data_ptr() != src.data_ptr()) Tensor(dst).copy_(src);
  }
};

}  // namespace

std::unique_ptr<Communicator> make_local_communicator(Device device) {
  return std::make_unique<LocalCommunicator>(device);
}

std::vector<double> all_reduce_sum(Communicator& comm, const std::vector<double>& values) {
  const int64_t k = int64_t(values.size()), w = comm.world_size();
  if (w == 1 || k == 0) return values;
  Tensor mine = Tensor::empty({k}, DType::f64);
  std::memcpy(mine.data_ptr(), values.data(), size_t(k) * sizeof(double));
  Tensor all = Tensor::empty({w * k}, DType::f64, comm.device());
  comm.all_gather(mine.to(comm.device()), all);
  const std::vector<double> host = all.to_vector<double>();
  std::vector<double> out(size_t(k), 0.0);
  for (int64_t r = 0; r < w; ++r)
    for (int64_t i = 0; i < k; ++i) out[size_t(i)] += host[size_t(r * k + i)];
  return out;
}

double all_reduce_sum(Communicator& comm, double value) {
  return all_reduce_sum(comm, std::vector<double>{value})[0];
}

std::string broadcast_bytes(Communicator& comm, const std::string& bytes, int root) {
  if (comm.world_size() == 1) return bytes;
  Tensor size = Tensor::empty({1}, DType::i64);
  size.data<int64_t>()[0] = int64_t(bytes.size());
  size = size.to(comm.device());
  comm.broadcast(size, root);
  const int64_t n = int64_t(size.item());
  // Bytes travel as whole i64 words (there is no byte dtype).
  Tensor words = zeros({(n + 7) / 8}, DType::i64);
  if (comm.rank() == root) std::memcpy(words.data_ptr(), bytes.data(), bytes.size());
  words = words.to(comm.device());
  comm.broadcast(words, root);
  words = words.to(Device::cpu());
  return std::string(static_cast<const char*>(words.data_ptr()), size_t(n));
}

void run_agreed(Communicator& comm, const std::function<void()>& body) {
  if (comm.world_size() == 1) {
    body();
    return;
  }
  std::string message;
  bool failed = false;
  try {
    body();
  } catch (const Error& e) {
    failed = true;
    message = e.what();
  }
  std::vector<double> flags(size_t(comm.world_size()), 0.0);
  flags[size_t(comm.rank())] = failed ? 1.0 : 0.0;
  flags = all_reduce_sum(comm, flags);
  for (int r = 0; r < comm.world_size(); ++r) {
    if (flags[size_t(r)] == 0) continue;
    message = broadcast_bytes(comm, message, r);
    throw JobError(r == 0 ? message : str_cat("rank ", r, ": ", message));
  }
}

bool have_mpi() {
#ifdef SERPENT_MPI
  return true;
#else
  return false;
#endif
}

bool have_nccl() {
#ifdef SERPENT_NCCL
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Communicator> make_communicator(const DistEnv& env, Device device, const CommOptions& options) {
  std::string backend = options.backend;
  SERPENT_CHECK(backend == "auto" || backend == "local" || backend == "mpi" || backend == "nccl",
                "unknown communication backend '", backend, "': expected auto, local, mpi or nccl");
  if (backend == "auto") backend = env.world_size == 1 ? "local" : device.is_cuda() ? "nccl" : "mpi";
  if (backend == "local") {
    SERPENT_CHECK(env.world_size == 1, "the local communication backend runs one process, but this is ", env.describe(),
                  "; use mpi (cpu) or nccl (GPU)");
    return make_local_communicator(device);
  }
  if (backend == "mpi") {
    SERPENT_CHECK(device.is_cpu(), "the mpi communication backend moves cpu tensors, but the model is on ",
                  device.str(), "; use nccl for GPUs");
#ifdef SERPENT_MPI
    return make_mpi_communicator(env, options);
#else
    fail("this is ", env.describe(), " on the cpu, but this build of serpent has no MPI, so a cpu run is a ",
         "single process: install MPI (Debian/Ubuntu: apt-get install libopenmpi-dev openmpi-bin, as scripts/deps.sh ",
         "does) and rebuild, or run one process");
#endif
  }
  SERPENT_CHECK(device.is_cuda(), "the nccl communication backend moves GPU tensors, but the model is on ",
                device.str(), "; use mpi for the cpu");
#ifdef SERPENT_NCCL
  return make_nccl_communicator(env, device, options);
#else
  fail("this is ", env.describe(), " on ", device.str(), ", but this build of serpent has no NCCL: install ",
       "NCCL (libnccl2 and libnccl-dev) and rebuild with the CUDA backend");
#endif
}

}  // namespace serpent
