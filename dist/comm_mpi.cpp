// The MPI communicator for cpu tensors (dist/comm.h), built when CMake finds MPI.
//
// How the ranks find each other depends on the launcher (dist/dist_env.h):
//   mpirun, srun --mpi=pmix   MPI_Init gives the whole job in MPI_COMM_WORLD.
//   torchrun-style variables  every process starts alone (an MPI "singleton"). OpenMPI can join
//                             singletons through its name server, ompi-server: rank 0 starts one,
//                             sends its address to the others over the TCP rendezvous at
//                             MASTER_ADDR:MASTER_PORT (dist/tcp_bootstrap.h), every rank
//                             initializes MPI pointing at it, and rank 0 then admits the others
//                             one at a time (MPI_Comm_accept / MPI_Comm_connect, merging each time:
//                             OpenMPI does not serialize concurrent connects by itself), telling
//                             each when to connect over the same TCP connections. A final split
//                             orders the ranks by RANK.
//
// Every collective is MPI's non-blocking form, completed by polling MPI_Test with a deadline
// (CommOptions::timeout_s): a rank that died or hangs makes the others stop with an error instead
// of waiting forever. The polling backs off to short sleeps, because ranks often share cores
// (mpirun --oversubscribe) and a spinning rank would slow down the ones still computing.
#ifdef SERPENT_MPI

#include <mpi.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "dist/comm.h"
#include "dist/tcp_bootstrap.h"
#include "dist/watchdog.h"

namespace serpent {

namespace {

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  return std::string(text, size_t(len));
}

void mpi_check(int code, const char* what) {
  if (code != MPI_SUCCESS) fail("MPI error in ", what, ": ", mpi_error_text(code));
}

MPI_Datatype mpi_type(DType dt) {
  switch (dt) {
    case DType::f32:
      return MPI_FLOAT;
    case DType::f64:
      return MPI_DOUBLE;
    case DType::bf16:
      return MPI_UINT16_T;  // summed by bf16_sum below
    case DType::i32:
      return MPI_INT32_T;
    case DType::i64:
      return MPI_INT64_T;
  }
  return MPI_DATATYPE_NULL;
}

// MPI has no bf16: the elements travel as 16-bit words and this op adds them in f32, rounding
// each sum back to bf16 (as NCCL does).
void bf16_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = bf16::from_float(bf16::to_float(a[i]) + bf16::to_float(b[i]));
}

int checked_count(int64_t n, const char* op) {
  SERPENT_CHECK(n <= INT_MAX, op, ": ", n, " elements is more than MPI's limit of ", INT_MAX, " per call");
  return int(n);
}

// OpenMPI's name server, started by rank 0 for the torchrun-style path; killed with rank 0.
struct NameServer {
  pid_t pid = -1;
  std::string uri;
  std::string uri_file;
};

std::string find_program(const std::string& name) {
  if (const char* path = std::getenv("PATH")) {
    std::stringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');) {
      const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
#ifdef SERPENT_MPIEXEC
  std::string launcher = SERPENT_MPIEXEC;
  const std::string candidate = launcher.substr(0, launcher.rfind('/') + 1) + name;
  if (::access(candidate.c_str(), X_OK) == 0) return candidate;
#endif
  return "";
}

NameServer start_name_server(double timeout_s) {
  NameServer ns;
  const std::string program = find_program("ompi-server");
  SERPENT_CHECK(!program.empty(), "a multi-process cpu run from torchrun-style variables (RANK, WORLD_SIZE) needs ",
                "OpenMPI's ompi-server to join the processes, and it is not on the PATH; start the job with ",
                "mpirun (or serpent train --nproc N) instead");
  char dir_template[] = "/tmp/serpent-mpi-XXXXXX";
  SERPENT_CHECK(::mkdtemp(dir_template), "cannot create a temporary folder under /tmp for ompi-server");
  ns.uri_file = std::string(dir_template) + "/uri";
  const pid_t parent = ::getpid();
  ns.pid = ::fork();
  SERPENT_CHECK(ns.pid >= 0, "cannot start ompi-server: fork failed");
  if (ns.pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // dies with rank 0
    if (::getppid() != parent) std::_Exit(1);
    std::freopen("/dev/null", "w", stdout);
    ::execl(program.c_str(), program.c_str(), "--no-daemonize", "-r", ns.uri_file.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(ns.uri_file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!text.empty() && text.back() == '\n') {
      ns.uri = text.substr(0, text.find('\n'));
      return ns;
    }
    int status = 0;
    SERPENT_CHECK(::waitpid(ns.pid, &status, WNOHANG) == 0, program, " exited before writing its address (status ",
                  status, ")");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(ns.pid, SIGTERM);
  fail(program, " did not write its address to ", ns.uri_file, " within ", timeout_s, " s");
}

// MPI is initialized once per process and finalized at exit; communicators duplicate `world`.
struct MpiRuntime {
  bool initialized = false;
  bool under_launcher = false;  // mpirun / srun: MPI_Abort ends the job
  MPI_Comm world = MPI_COMM_NULL;
  MPI_Op bf16_op = MPI_OP_NULL;
  NameServer name_server;

  ~MpiRuntime() {
    if (!initialized) return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) {
      if (world != MPI_COMM_NULL && world != MPI_COMM_WORLD) MPI_Comm_free(&world);
      MPI_Finalize();
    }
    if (name_server.pid > 0) {
      ::kill(name_server.pid, SIGTERM);
      ::waitpid(name_server.pid, nullptr, 0);
      std::remove(name_server.uri_file.c_str());
      ::rmdir(name_server.uri_file.substr(0, name_server.uri_file.rfind('/')).c_str());
    }
  }
};

MpiRuntime& runtime() {
  static MpiRuntime r;
  return r;
}

void init_mpi() {
  int provided = 0;
  mpi_check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  runtime().initialized = true;
  mpi_check(MPI_Op_create(&bf16_sum, 1, &runtime().bf16_op), "MPI_Op_create");
}

// The torchrun-style path (see the top of this file).
MPI_Comm join_singletons(const DistEnv& env, double timeout_s) {
  MpiRuntime& rt = runtime();
  TcpRendezvous rendezvous(env, "mpi", timeout_s);
  if (env.rank == 0) rt.name_server = start_name_server(timeout_s);
  const std::string uri = rendezvous.broadcast(rt.name_server.uri);
  ::setenv("OMPI_MCA_pmix_server_uri", uri.c_str(), 1);
  init_mpi();

  ExitAfter guard(timeout_s, env.rank,
                  str_cat("joining the ", env.world_size, " ranks through ompi-server did not finish within ",
                          timeout_s, " s: a rank has died or hangs"));
  char port[MPI_MAX_PORT_NAME] = {};
  MPI_Comm comm = MPI_COMM_SELF;
  if (env.rank == 0) {
    mpi_check(MPI_Open_port(MPI_INFO_NULL, port), "MPI_Open_port");
  } else {
    const std::string p = rendezvous.receive();
    SERPENT_CHECK(p.size() < sizeof port, "rank ", env.rank, ": an MPI port name of ", p.size(), " bytes");
    std::copy(p.begin(), p.end(), port);
    MPI_Comm inter;
    mpi_check(MPI_Comm_connect(port, MPI_INFO_NULL, 0, MPI_COMM_SELF, &inter), "MPI_Comm_connect");
    mpi_check(MPI_Intercomm_merge(inter, 1, &comm), "MPI_Intercomm_merge");
    MPI_Comm_free(&inter);
  }
  // The members so far admit one more rank at a time; rank 0 (rank 0 of every merged comm, as the
  // older group comes first) tells the next one to connect.
  int size = 1;
  MPI_Comm_size(comm, &size);
  while (size < env.world_size) {
    if (env.rank == 0) rendezvous.send(size, port);
    MPI_Comm inter, merged;
    mpi_check(MPI_Comm_accept(port, MPI_INFO_NULL, 0, comm, &inter), "MPI_Comm_accept");
    mpi_check(MPI_Intercomm_merge(inter, 0, &merged), "MPI_Intercomm_merge");
    MPI_Comm_free(&inter);
    if (comm != MPI_COMM_SELF) MPI_Comm_free(&comm);
    comm = merged;
    MPI_Comm_size(comm, &size);
  }
  if (env.rank == 0) MPI_Close_port(port);
  MPI_Comm ordered;
  mpi_check(MPI_Comm_split(comm, 0, env.rank, &ordered), "MPI_Comm_split");
  if (comm != MPI_COMM_SELF) MPI_Comm_free(&comm);
  return ordered;
}

void setup_runtime(const DistEnv& env, double timeout_s) {
  MpiRuntime& rt = runtime();
  if (rt.world != MPI_COMM_NULL) return;
  const bool singletons = env.launcher == Launcher::torchrun || env.launcher == Launcher::none;
  if (singletons && env.world_size > 1) {
    rt.world = join_singletons(env, timeout_s);
  } else {
    init_mpi();
    rt.world = MPI_COMM_WORLD;
    rt.under_launcher = !singletons;
  }
  int rank = 0, size = 0;
  MPI_Comm_rank(rt.world, &rank);
  MPI_Comm_size(rt.world, &size);
  SERPENT_CHECK(rank == env.rank && size == env.world_size, "MPI sees this process as rank ", rank, " of ", size,
                " but the environment says ", env.describe(),
                env.launcher == Launcher::slurm ? "; with Slurm, start OpenMPI programs with srun --mpi=pmix" : "");
}

class MpiCommunicator;

class MpiWork : public CommWork {
 public:
  MpiWork(MpiCommunicator* comm, std::string what, std::vector<Tensor> keep)
      : comm_(comm), what_(std::move(what)), keep_(std::move(keep)) {}
  ~MpiWork() override { wait(); }
  void wait() override;
  bool poll() override {
    int done = 1;
    if (!requests.empty()) MPI_Testall(int(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE);
    return done;
  }
  std::vector<MPI_Request> requests;

 private:
  MpiCommunicator* comm_;
  std::string what_;
  std::vector<Tensor> keep_;  // the buffers MPI is reading and writing
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(const DistEnv& env, const CommOptions& options)
      : Communicator(env.rank, env.world_size, Device::cpu()), timeout_s_(options.timeout_s) {
    setup_runtime(env, options.timeout_s);
    mpi_check(MPI_Comm_dup(runtime().world, &comm_), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
  const char* backend() const override { return "mpi"; }

  std::unique_ptr<CommWork> all_reduce_async(const Tensor& t) override {
    check_tensor("all_reduce", "the tensor", t, true);
    auto work = std::make_unique<MpiWork>(this, str_cat("all_reduce of ", t.str()), std::vector<Tensor>{t});
    // Counts above MPI's int limit go in pieces.
    const int64_t step = INT_MAX;
    for (int64_t at = 0; at < t.numel(); at += step) {
      const int n = int(std::min(step, t.numel() - at));
      char* p = static_cast<char*>(t.data_ptr()) + at * int64_t(dtype_size(t.dtype()));
      work->requests.emplace_back();
      check(MPI_Iallreduce(MPI_IN_PLACE, p, n, mpi_type(t.dtype()), op(t.dtype()), comm_, &work->requests.back()),
            "MPI_Iallreduce");
    }
    return work;
  }

  std::unique_ptr<CommWork> reduce_scatter_async(const Tensor& in, const Tensor& out) override {
    check_gather("reduce_scatter", out, in, true);
    const char* a = static_cast<const char*>(in.data_ptr());
    const char* b = static_cast<const char*>(out.data_ptr());
    SERPENT_CHECK(b + out.nbytes() <= a || a + in.nbytes() <= b, "reduce_scatter: the input and output overlap");
    auto work = std::make_unique<MpiWork>(this, str_cat("reduce_scatter of ", in.str()), std::vector<Tensor>{in, out});
    work->requests.emplace_back();
    check(MPI_Ireduce_scatter_block(in.data_ptr(), out.data_ptr(), checked_count(out.numel(), "reduce_scatter"),
                                    mpi_type(in.dtype()), op(in.dtype()), comm_, &work->requests.back()),
          "MPI_Ireduce_scatter_block");
    return work;
  }

  std::unique_ptr<CommWork> all_gather_async(const Tensor& in, const Tensor& out) override {
    check_gather("all_gather", in, out, false);
    const int n = checked_count(in.numel(), "all_gather");
    const bool in_place = in.data_ptr() == static_cast<char*>(out.data_ptr()) + int64_t(rank()) * int64_t(in.nbytes());
    auto work = std::make_unique<MpiWork>(this, str_cat("all_gather into ", out.str()), std::vector<Tensor>{in, out});
    work->requests.emplace_back();
    check(MPI_Iallgather(in_place ? MPI_IN_PLACE : in.data_ptr(), n, mpi_type(in.dtype()), out.data_ptr(), n,
                         mpi_type(out.dtype()), comm_, &work->requests.back()),
          "MPI_Iallgather");
    return work;
  }

  std::unique_ptr<CommWork> broadcast_async(const Tensor& t, int root) override {
    check_tensor("broadcast", "the tensor", t, false);
    SERPENT_CHECK(root >= 0 && root < world_size(), "broadcast: root ", root, " is not a rank of ", world_size());
    auto work = std::make_unique<MpiWork>(this, str_cat("broadcast of ", t.str()), std::vector<Tensor>{t});
    const int64_t step = INT_MAX;
    for (int64_t at = 0; at < t.numel(); at += step) {
      const int n = int(std::min(step, t.numel() - at));
      char* p = static_cast<char*>(t.data_ptr()) + at * int64_t(dtype_size(t.dtype()));
      work->requests.emplace_back();
      check(MPI_Ibcast(p, n, mpi_type(t.dtype()), root, comm_, &work->requests.back()), "MPI_Ibcast");
    }
    return work;
  }

  void barrier() override {
    MpiWork work(this, "barrier", {});
    work.requests.emplace_back();
    check(MPI_Ibarrier(comm_, &work.requests.back()), "MPI_Ibarrier");
    work.wait();
  }

  [[noreturn]] void abort_job(const std::string& message) override {
    std::fprintf(stderr, "serpent: error: rank %d: %s\n", rank(), message.c_str());
    std::fflush(stderr);
    // Under mpirun / srun this takes every rank down at once. Joined singletons have no launcher
    // to do that: the others stop at their own timeout.
    if (runtime().under_launcher) MPI_Abort(comm_, 1);
    std::_Exit(1);
  }

  // Completes `requests`, polling until the deadline (see the top of this file).
  void complete(std::vector<MPI_Request>& requests, const std::string& what) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    const auto deadline =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s_));
    auto pause = std::chrono::microseconds(20);
    for (int polls = 0;; ++polls) {
      int done = 0;
      const int rc = MPI_Testall(int(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE);
      if (rc != MPI_SUCCESS) abort_job(str_cat(what, " failed: ", mpi_error_text(rc)));
      if (done) return;
      if (Clock::now() > deadline)
        abort_job(str_cat(what, " did not complete within ", timeout_s_,
                          " s (dist.timeout_s): another rank has died, hangs, or stopped taking part; stopping"));
      if (polls < 100) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::microseconds(1000));
      }
    }
  }

 private:
  MPI_Op op(DType dt) const { return dt == DType::bf16 ? runtime().bf16_op : MPI_SUM; }
  void check(int rc, const char* what) {
    if (rc != MPI_SUCCESS) fail("rank ", rank(), ": ", what, " failed: ", mpi_error_text(rc));
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  double timeout_s_;
};

void MpiWork::wait() {
  if (requests.empty()) return;
  comm_->complete(requests, what_);
  requests.clear();
  keep_.clear();
}

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(const DistEnv& env, const CommOptions& options) {
  return std::make_unique<MpiCommunicator>(env, options);
}

}  // namespace serpent

#endif  // SERPENT_MPI
