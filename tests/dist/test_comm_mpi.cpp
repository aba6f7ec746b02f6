// The MPI communicator as real processes: the DistMpi tests start this test binary under mpirun
// (and as torchrun-style processes), where the MpiWorker tests run as the ranks: collectives,
// the gradient buckets and ZeRO-1 against the same run on threads, and a stalled rank ending the
// job. Skipped in a build without MPI.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <thread>

#include "dist/comm.h"
#include "dist/dist_env.h"
#include "tests/dist/thread_comm.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

// "1" in the ranks of a DistMpi job, "stall" in the job whose rank 1 stops taking part.
std::string worker_mode() {
  const char* v = std::getenv("SERPENT_MPI_WORKER");
  return v ? v : "";
}

TEST(MpiWorker, Collectives) {
  if (worker_mode() != "1") GTEST_SKIP() << "runs as the ranks of DistMpi.* (SERPENT_MPI_WORKER=1)";
  auto comm = make_communicator(dist_env_from_process(), Device::cpu(), {"mpi", 60});
  ASSERT_STREQ(comm->backend(), "mpi");
  const int w = comm->world_size(), r = comm->rank();
  ASSERT_GE(w, 2);
  // Small integers: every sum is exact in f32, f64 and bf16 alike.
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    std::vector<double> v, want;
    for (int i = 0; i < 37; ++i) {
      v.push_back(i % 7 + r);
      want.push_back(w * (i % 7) + w * (w - 1) / 2);
    }
    Tensor t = from_vector(v, {37}, dt);
    comm->all_reduce(t);
    EXPECT_EQ(t.to_vector<double>(), want) << dtype_name(dt);
  }
  // reduce_scatter: rank k's input is k everywhere plus the chunk index; chunk c sums to
  // w (w - 1) / 2 + w c.
  Tensor in = Tensor::empty({3 * w}, DType::f32);
  for (int i = 0; i < 3 * w; ++i) in.data<float>()[i] = float(r + i / 3);
  Tensor out = zeros({3});
  comm->reduce_scatter(in, out);
  EXPECT_EQ(out.to_vector<float>(), std::vector<float>(3, float(w * (w - 1) / 2 + w * r)));
  // all_gather, out of place and in place.
  Tensor all = zeros({2 * w}, DType::i64);
  comm->all_gather(from_vector<int64_t>({r, 100 + r}, {2}), all);
  Tensor in_place = full({2 * w}, -1.0, DType::i64);
  flat_view(in_place, 2 * r, 2).copy_(from_vector<int64_t>({r, 100 + r}, {2}));
  comm->all_gather(flat_view(in_place, 2 * r, 2), in_place);
  std::vector<int64_t> want;
  for (int k = 0; k < w; ++k) want.insert(want.end(), {k, 100 + k});
  EXPECT_EQ(all.to_vector<int64_t>(), want);
  EXPECT_EQ(in_place.to_vector<int64_t>(), want);
  // broadcast from the last rank, several operations in flight at once, barrier.
  Tensor b = full({5}, double(r), DType::f64);
  Tensor c = full({4}, 1.0), d = full({4}, 2.0);
  auto wb = comm->broadcast_async(b, w - 1);
  auto wc = comm->all_reduce_async(c);
  auto wd = comm->all_reduce_async(d);
  wd->wait();
  wb->wait();
  wc->wait();
  EXPECT_EQ(b.to_vector<double>(), std::vector<double>(5, double(w - 1)));
  EXPECT_EQ(c.to_vector<float>(), std::vector<float>(4, float(w)));
  EXPECT_EQ(d.to_vector<float>(), std::vector<float>(4, float(2 * w)));
  comm->barrier();
  // Scalar sums add in rank order: the same bits as a loop over the ranks' values.
  double expected = 0;
  for (int k = 0; k < w; ++k) expected += 0.1 * (k + 1);
  EXPECT_EQ(all_reduce_sum(*comm, 0.1 * (r + 1)), expected);
  EXPECT_EQ(broadcast_bytes(*comm, r == 0 ? std::string("config\0text", 11) : "", 0), std::string("config\0text", 11));
  expect_error([&] { comm->all_gather(from_vector<float>({1}, {1}), zeros({w + 1})); }, {"all_gather"});
}

TEST(MpiWorker, BucketsAndZeroOneMatchThreads) {
  if (worker_mode() != "1") GTEST_SKIP() << "runs as the ranks of DistMpi.* (SERPENT_MPI_WORKER=1)";
  auto comm = make_communicator(dist_env_from_process(), Device::cpu(), {"mpi", 60});
  for (bool zero1 : {false, true}) {
    const auto mine = train_rank(*comm, zero1, 3, nullptr, nullptr, 0, nullptr);
    // The same run with the ranks as threads of this process.
    const RunResult threads = train_threads(comm->world_size(), zero1, 3);
    for (size_t s = 0; s < mine.size(); ++s)
      EXPECT_LE(max_relative_difference(mine[s], threads.params[s]), 1e-6) << "zero1 " << zero1 << " step " << s;
    // Every rank holds the same weights: compare a checksum with rank 0's.
    double sum = 0;
    for (const auto& t : mine.back())
      for (size_t k = 0; k < t.size(); ++k) sum += double(t[k]) * double(k % 13 + 1);
    Tensor all = zeros({comm->world_size()}, DType::f64);
    comm->all_gather(full({1}, sum, DType::f64), all);
    for (double x : all.to_vector<double>()) EXPECT_EQ(x, sum);
  }
}

TEST(MpiWorker, StalledRankEndsTheJob) {
  if (worker_mode() != "stall") GTEST_SKIP() << "runs as the ranks of DistMpi.StalledRankEndsTheJobWithinTheTimeout";
  auto comm = make_communicator(dist_env_from_process(), Device::cpu(), {"mpi", 2});
  Tensor t = ones({4});
  comm->all_reduce(t);  // everyone is up
  if (comm->rank() == 1) std::this_thread::sleep_for(std::chrono::seconds(60));
  comm->all_reduce(t);  // rank 0 gives up after 2 s
  ADD_FAILURE() << "the all_reduce should not have completed";
}

std::map<std::string, std::string> worker_env(const std::string& mode) {
  return {{"SERPENT_MPI_WORKER", mode}, {"OMP_NUM_THREADS", "1"}};
}

std::vector<std::string> mpirun_worker(int ranks, const std::string& filter) {
  std::vector<std::string> a = mpirun_argv(ranks);
  for (const char* v : {"SERPENT_MPI_WORKER", "OMP_NUM_THREADS"}) a.insert(a.end(), {"-x", v});
  a.insert(a.end(), {self_path(), "--gtest_color=no", "--gtest_filter=" + filter});
  return a;
}

TEST(DistMpi, CollectivesAndTrainingOnThreeRanks) {
  if (!have_mpi()) GTEST_SKIP() << "this build has no MPI";
  const std::string dir = scratch_dir("mpi3");
  const ProcessResult r = run_process(mpirun_worker(3, "MpiWorker.Collectives:MpiWorker.BucketsAndZeroOneMatchThreads"),
                                      worker_env("1"), dir + "/out.txt", 240);
  EXPECT_EQ(r.code, 0) << r.output;
  // Each rank reports its own two passing tests.
  size_t passed = 0;
  for (size_t at = r.output.find("[  PASSED  ] 2 tests"); at != std::string::npos;
       at = r.output.find("[  PASSED  ] 2 tests", at + 1))
    ++passed;
  EXPECT_EQ(passed, 3u) << r.output;
  std::filesystem::remove_all(dir);
}

TEST(DistMpi, TorchrunStyleProcessesWithoutMpirun) {
  if (!have_mpi()) GTEST_SKIP() << "this build has no MPI";
  const std::string dir = scratch_dir("torchrun");
  const int world = 2;
  const std::string port = std::to_string(free_port_for_test());
  std::vector<Child> ranks;
  for (int r = 0; r < world; ++r) {
    auto env = worker_env("1");
    env.insert({{"RANK", std::to_string(r)},
                {"WORLD_SIZE", std::to_string(world)},
                {"LOCAL_RANK", std::to_string(r)},
                {"MASTER_ADDR", "127.0.0.1"},
                {"MASTER_PORT", port}});
    ranks.push_back(start_process({self_path(), "--gtest_color=no", "--gtest_filter=MpiWorker.Collectives"}, env,
                                  dir + "/rank" + std::to_string(r) + ".txt"));
  }
  for (int r = 0; r < world; ++r) {
    const int code = wait_process(ranks[size_t(r)], 120);
    const std::string out = read_text_file(ranks[size_t(r)].output_path);
    EXPECT_EQ(code, 0) << "rank " << r << ":\n" << out;
    EXPECT_NE(out.find("[  PASSED  ] 1 test"), std::string::npos) << out;
  }
  std::filesystem::remove_all(dir);
}

TEST(DistMpi, StalledRankEndsTheJobWithinTheTimeout) {
  if (!have_mpi()) GTEST_SKIP() << "this build has no MPI";
  const std::string dir = scratch_dir("stall");
  const auto start = std::chrono::steady_clock::now();
  const ProcessResult r =
      run_process(mpirun_worker(2, "MpiWorker.StalledRankEndsTheJob"), worker_env("stall"), dir + "/out.txt", 60);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.code, -2) << "the job had to be killed: it hung";
  EXPECT_NE(r.output.find("rank 0: all_reduce of f32[4] on cpu did not complete within 2 s"), std::string::npos)
      << r.output;
  EXPECT_LT(seconds, 30) << r.output;
  std::filesystem::remove_all(dir);
}

}  // namespace
