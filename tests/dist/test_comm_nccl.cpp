// The NCCL communicator on a GPU at world size 1: its collectives, and the gradient buckets and
// ZeRO-1 on it against the local communicator and the cpu. Skipped without a GPU or NCCL.
#include "dist/comm.h"
#include "dist/dist_env.h"
#include "tests/dist/thread_comm.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

std::unique_ptr<Communicator> nccl_on_gpu0() {
  DistEnv env;
  env.master_addr = "127.0.0.1";
  env.master_port = free_port_for_test();
  return make_communicator(env, Device::cuda(0), {"nccl", 60});
}

class NcclCuda : public NcclTest {};

TEST_F(NcclCuda, CollectivesAtWorldSizeOne) {
  auto comm = nccl_on_gpu0();
  ASSERT_STREQ(comm->backend(), "nccl");
  const Device gpu = Device::cuda(0);
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    Tensor t = from_vector<double>({1, -2, 3.5}, {3}, dt, gpu);
    comm->all_reduce(t);
    EXPECT_EQ(t.to_vector<double>(), (std::vector<double>{1, -2, 3.5})) << dtype_name(dt);
  }
  Tensor in = from_vector<float>({4, 5}, {2}, DType::f32, gpu), out = zeros({2}, DType::f32, gpu);
  comm->reduce_scatter(in, out);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{4, 5}));
  Tensor all = zeros({2}, DType::i64, gpu);
  comm->all_gather(from_vector<int64_t>({7, 8}, {2}, DType::i64, gpu), all);
  EXPECT_EQ(all.to_vector<int64_t>(), (std::vector<int64_t>{7, 8}));
  comm->all_gather(all, all);  // in place
  EXPECT_EQ(all.to_vector<int64_t>(), (std::vector<int64_t>{7, 8}));
  // Several in flight, waited in another order; the host reads after wait() without a sync of
  // its own (the copy to the host runs on the compute stream, which now waits for them).
  Tensor a = full({1 << 20}, 1.5, DType::f32, gpu), b = full({1000}, 2.0, DType::f32, gpu);
  auto wa = comm->all_reduce_async(a);
  auto wb = comm->broadcast_async(b, 0);
  wb->wait();
  wa->wait();
  EXPECT_EQ(a.to_vector<float>(), std::vector<float>(1 << 20, 1.5f));
  EXPECT_EQ(b.to_vector<float>(), std::vector<float>(1000, 2.0f));
  comm->barrier();
  EXPECT_EQ(all_reduce_sum(*comm, 0.25), 0.25);
  EXPECT_EQ(broadcast_bytes(*comm, "abc", 0), "abc");
  expect_error([&] { comm->all_reduce(ones({2})); }, {"nccl", "cuda:0"});
}

TEST_F(NcclCuda, BucketsAndZeroOneOnTheGpu) {
  auto local = make_local_communicator(Device::cuda(0));
  auto nccl = nccl_on_gpu0();
  const auto plain_local = train_rank(*local, false, 3, nullptr, nullptr, 0, nullptr);
  const auto plain_nccl = train_rank(*nccl, false, 3, nullptr, nullptr, 0, nullptr);
  const auto zero_nccl = train_rank(*nccl, true, 3, nullptr, nullptr, 0, nullptr);
  auto cpu = make_local_communicator(Device::cpu());
  const auto plain_cpu = train_rank(*cpu, false, 3, nullptr, nullptr, 0, nullptr);
  // NCCL over one rank is the identity: bitwise the local path. ZeRO-1's sharded update (device
  // norm of the chunk norms, the AdamW kernel over pieces, the in-place all-gather, the bf16
  // copies refreshed) gives plain AdamW's weights; and the GPU follows the cpu.
  EXPECT_EQ(plain_nccl, plain_local);
  for (size_t s = 0; s < plain_nccl.size(); ++s) {
    EXPECT_LE(max_relative_difference(zero_nccl[s], plain_nccl[s]), 1e-6) << s;
    EXPECT_LE(max_relative_difference(plain_nccl[s], plain_cpu[s]), 1e-4) << s;
  }
}

}  // namespace
