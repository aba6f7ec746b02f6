// Communicators (dist/comm.h): the local one on one rank, choosing a backend, and the test
// communicator of tests/dist/thread_comm.h against sums worked by hand. The MPI and NCCL ones are
// in test_comm_mpi.cpp and test_comm_nccl.cpp.
#include "dist/comm.h"
#include "dist/dist_env.h"
#include "tests/dist/thread_comm.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(LocalComm, IsTheIdentityOnOneRank) {
  auto comm = make_communicator(DistEnv{}, Device::cpu(), {});
  EXPECT_STREQ(comm->backend(), "local");
  Tensor t = from_vector<float>({1, 2, 3}, {3});
  comm->all_reduce(t);
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3}));
  Tensor out = zeros({3});
  comm->reduce_scatter(t, out);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{1, 2, 3}));
  Tensor g = zeros({3}, DType::i64);
  comm->all_gather(from_vector<int64_t>({4, 5, 6}, {3}), g);
  EXPECT_EQ(g.to_vector<int64_t>(), (std::vector<int64_t>{4, 5, 6}));
  EXPECT_DOUBLE_EQ(all_reduce_sum(*comm, 2.5), 2.5);
  EXPECT_EQ(broadcast_bytes(*comm, "abc", 0), "abc");
  expect_error([&] { comm->all_reduce(from_vector<int64_t>({1}, {1})); }, {"all_reduce", "i64", "f32, f64 or bf16"});
  expect_error([&] { comm->all_gather(t, zeros({4})); }, {"all_gather", "world size 1"});
}

TEST(Comm, ChoosingABackend) {
  DistEnv two;
  two.launcher = Launcher::torchrun;
  two.world_size = 2;
  expect_error([&] { make_communicator(two, Device::cpu(), {"local", 5}); }, {"local", "one process"});
  expect_error([&] { make_communicator(DistEnv{}, Device::cpu(), {"nccl", 5}); }, {"nccl", "GPU tensors"});
  expect_error([&] { make_communicator(DistEnv{}, Device::cuda(0), {"mpi", 5}); }, {"mpi", "cpu tensors"});
  expect_error([&] { make_communicator(DistEnv{}, Device::cpu(), {"gloo", 5}); }, {"unknown", "gloo"});
  if (!have_mpi())
    expect_error([&] { make_communicator(two, Device::cpu(), {}); }, {"no MPI", "libopenmpi-dev openmpi-bin"});
  if (!have_nccl()) expect_error([&] { make_communicator(two, Device::cuda(0), {}); }, {"no NCCL"});
}

TEST(ThreadComm, CollectivesAddInRankOrder) {
  // The test communicator itself, against sums worked by hand: the reference for the others.
  run_ranks(3, [](Communicator& c) {
    const float r = float(c.rank());
    Tensor t = from_vector<float>({r, 10 * r}, {2});
    c.all_reduce(t);
    EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{3, 30}));
    Tensor in = from_vector<float>({r, r, 1, 1, 2 * r, 2 * r}, {6}), out = zeros({2});
    c.reduce_scatter(in, out);
    const std::vector<std::vector<float>> want = {{3, 3}, {3, 3}, {6, 6}};
    EXPECT_EQ(out.to_vector<float>(), want[size_t(c.rank())]);
    Tensor all = zeros({3}, DType::i64);
    c.all_gather(from_vector<int64_t>({int64_t(c.rank()) + 7}, {1}), all);
    EXPECT_EQ(all.to_vector<int64_t>(), (std::vector<int64_t>{7, 8, 9}));
    EXPECT_DOUBLE_EQ(all_reduce_sum(c, 0.5 + c.rank()), 4.5);
    EXPECT_EQ(broadcast_bytes(c, c.rank() == 1 ? "from one" : "x", 1), "from one");
  });
}

}  // namespace
