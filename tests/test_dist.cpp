// Data-parallel building blocks (docs/DISTRIBUTED.md): the launcher environment, Slurm hostlists,
// the TCP rendezvous, the local communicator, the gradient buckets and ZeRO-1, the last two on W
// ranks run as threads (tests/thread_comm.h) and compared with one process doing the same work.
// The MPI communicator runs the same checks as real processes: the DistMpi tests start this test
// binary under mpirun (and as torchrun-style processes), where the MpiWorker tests run as the ranks.
// Whole training runs on several processes are in test_dist_train.cpp.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <thread>

#include "autograd/node.h"
#include "helpers.h"
#include "layers/mamba.h"
#include "optim/adamw.h"
#include "optim/zero1.h"
#include "process_helpers.h"
#include "thread_comm.h"
#include "dist/comm.h"
#include "dist/dist_env.h"
#include "dist/grad_buckets.h"
#include "dist/launch.h"
#include "dist/tcp_bootstrap.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

DistEnv env_of(const std::map<std::string, std::string>& vars) {
  return dist_env_from([&](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  });
}

}  // namespace

TEST(DistEnv, NoLauncherIsOneProcess) {
  const DistEnv d = env_of({});
  EXPECT_EQ(d.launcher, Launcher::none);
  EXPECT_EQ(d.rank, 0);
  EXPECT_EQ(d.world_size, 1);
  EXPECT_FALSE(d.distributed());
}

TEST(DistEnv, TorchrunStyle) {
  const DistEnv d = env_of({{"RANK", "3"},
                            {"WORLD_SIZE", "8"},
                            {"LOCAL_RANK", "1"},
                            {"LOCAL_WORLD_SIZE", "2"},
                            {"MASTER_ADDR", "node07"},
                            {"MASTER_PORT", "29400"}});
  EXPECT_EQ(d.launcher, Launcher::torchrun);
  EXPECT_EQ(d.rank, 3);
  EXPECT_EQ(d.world_size, 8);
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.local_world_size, 2);
  EXPECT_EQ(d.master_addr, "node07");
  EXPECT_EQ(d.master_port, 29400);
  EXPECT_TRUE(d.distributed());
  EXPECT_NE(d.describe().find("rank 3 of 8"), std::string::npos);
}

TEST(DistEnv, OpenMpiOnOneNodeDefaultsToLoopback) {
  const DistEnv d = env_of({{"OMPI_COMM_WORLD_RANK", "2"},
                            {"OMPI_COMM_WORLD_SIZE", "4"},
                            {"OMPI_COMM_WORLD_LOCAL_RANK", "2"},
                            {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}});
  EXPECT_EQ(d.launcher, Launcher::openmpi);
  EXPECT_EQ(d.rank, 2);
  EXPECT_EQ(d.world_size, 4);
  EXPECT_EQ(d.local_rank, 2);
  EXPECT_EQ(d.master_addr, "127.0.0.1");
  EXPECT_EQ(d.master_port, kDefaultMasterPort);
  // On several nodes there is no default: the rendezvous then asks for MASTER_ADDR.
  const DistEnv multi = env_of({{"OMPI_COMM_WORLD_RANK", "5"},
                                {"OMPI_COMM_WORLD_SIZE", "8"},
                                {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}});
  EXPECT_TRUE(multi.master_addr.empty());
  expect_error([&] { multi.require_master(); }, {"MASTER_ADDR", "MASTER_PORT", "-x MASTER_ADDR"});
}

TEST(DistEnv, SlurmTakesTheFirstNodeAsMaster) {
  const DistEnv d = env_of({{"SLURM_PROCID", "5"},
                            {"SLURM_NTASKS", "8"},
                            {"SLURM_LOCALID", "1"},
                            {"SLURM_NTASKS_PER_NODE", "4"},
                            {"SLURM_JOB_ID", "123456"},
                            {"SLURM_JOB_NODELIST", "gpu[07-08,11],login1"}});
  EXPECT_EQ(d.launcher, Launcher::slurm);
  EXPECT_EQ(d.rank, 5);
  EXPECT_EQ(d.world_size, 8);
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.local_world_size, 4);
  EXPECT_EQ(d.master_addr, "gpu07");
  EXPECT_EQ(d.master_port, 20000 + 123456 % 10000);
  // MASTER_* override, and "2(x4)" task counts are not taken for a local size.
  const DistEnv o = env_of({{"SLURM_PROCID", "0"},
                            {"SLURM_NTASKS", "8"},
                            {"SLURM_NTASKS_PER_NODE", "2(x4)"},
                            {"SLURM_JOB_NODELIST", "a1"},
                            {"MASTER_ADDR", "10.0.0.9"},
                            {"MASTER_PORT", "4000"}});
  EXPECT_EQ(o.master_addr, "10.0.0.9");
  EXPECT_EQ(o.master_port, 4000);
  EXPECT_EQ(o.local_world_size, 1);
}

TEST(DistEnv, InnermostLauncherWins) {
  // torchrun inside a Slurm job, and mpirun inside one: the job's SLURM_* describe the allocation.
  const std::map<std::string, std::string> slurm = {
      {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "16"}, {"SLURM_JOB_NODELIST", "n[1-4]"}};
  auto with = [&](std::map<std::string, std::string> extra) {
    extra.insert(slurm.begin(), slurm.end());
    return env_of(extra);
  };
  const DistEnv t = with({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"}});
  EXPECT_EQ(t.launcher, Launcher::torchrun);
  EXPECT_EQ(t.world_size, 2);
  const DistEnv m = with({{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "4"}});
  EXPECT_EQ(m.launcher, Launcher::openmpi);
  EXPECT_EQ(m.rank, 3);
}

TEST(DistEnv, InconsistentValuesAreClearErrors) {
  expect_error([] { env_of({{"RANK", "0"}}); }, {"WORLD_SIZE is not set", "RANK and WORLD_SIZE"});
  expect_error([] { env_of({{"WORLD_SIZE", "2"}}); }, {"RANK is not set"});
  expect_error(
      [] {
        env_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}});
      },
      {"RANK=2", "outside [0, WORLD_SIZE=2)"});
  expect_error([] { env_of({{"RANK", "-1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}}); }, {"RANK=-1"});
  expect_error([] { env_of({{"RANK", "0"}, {"WORLD_SIZE", "0"}}); }, {"WORLD_SIZE=0", "at least 1"});
  expect_error([] { env_of({{"RANK", "one"}, {"WORLD_SIZE", "2"}}); }, {"RANK='one'", "not an integer"});
  expect_error([] { env_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}}); }, {"LOCAL_RANK is not set"});
  expect_error(
      [] {
        env_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "2"}});
      },
      {"LOCAL_RANK=2", "outside [0, world size 2)"});
  expect_error(
      [] {
        env_of({{"RANK", "1"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "2"}, {"LOCAL_WORLD_SIZE", "2"}});
      },
      {"LOCAL_RANK=2", "LOCAL_WORLD_SIZE=2"});
  expect_error(
      [] {
        env_of({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"MASTER_PORT", "70000"}});
      },
      {"MASTER_PORT=70000", "1 to 65535"});
  expect_error([] { env_of({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"MASTER_ADDR", ""}}); }, {"MASTER_ADDR", "empty"});
  expect_error(
      [] {
        env_of({{"OMPI_COMM_WORLD_RANK", "4"}, {"OMPI_COMM_WORLD_SIZE", "4"}});
      },
      {"OMPI_COMM_WORLD_RANK=4", "OMPI_COMM_WORLD_SIZE=4"});
  expect_error([] { env_of({{"OMPI_COMM_WORLD_SIZE", "4"}}); }, {"OMPI_COMM_WORLD_RANK is not set"});
  expect_error([] { env_of({{"SLURM_PROCID", "9"}, {"SLURM_NTASKS", "8"}}); }, {"SLURM_PROCID=9", "SLURM_NTASKS=8"});
  expect_error(
      [] {
        env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_NODELIST", "n[1-"}});
      },
      {"SLURM_JOB_NODELIST 'n[1-'"});
}

TEST(SlurmNodelist, ExpandsRangesListsAndPadding) {
  using V = std::vector<std::string>;
  EXPECT_EQ(expand_slurm_nodelist("node[01-04,07],gpu5"),
            (V{"node01", "node02", "node03", "node04", "node07", "gpu5"}));
  EXPECT_EQ(expand_slurm_nodelist("a1"), (V{"a1"}));
  EXPECT_EQ(expand_slurm_nodelist("n[8-11]"), (V{"n8", "n9", "n10", "n11"}));
  EXPECT_EQ(expand_slurm_nodelist("n[098-101]"), (V{"n098", "n099", "n100", "n101"}));
  EXPECT_EQ(expand_slurm_nodelist("r[1-2]-n[3,5]"), (V{"r1-n3", "r1-n5", "r2-n3", "r2-n5"}));
  EXPECT_EQ(expand_slurm_nodelist("x[1],y,z[2-3]"), (V{"x1", "y", "z2", "z3"}));
  EXPECT_EQ(expand_slurm_nodelist("c-[5]-ib"), (V{"c-5-ib"}));
}

TEST(SlurmNodelist, MalformedListsAreErrors) {
  for (const char* bad : {"", "n[1-2", "n1-2]", "n[[1]]", "n[2-1]", "n[a-b]", "n[1,,2]", "a,,b", "n[]"})
    EXPECT_THROW(expand_slurm_nodelist(bad), Error) << bad;
}

TEST(TcpRendezvous, BroadcastsFromRankZeroToEveryRank) {
  const int port = free_port_for_test(), world = 4;
  std::vector<std::string> got(world);
  std::vector<std::string> second(world);
  std::vector<std::thread> ranks;
  for (int r = world - 1; r >= 0; --r)  // rank 0 last: the others retry until it listens
    ranks.emplace_back([&, r] {
      DistEnv env;
      env.launcher = Launcher::torchrun;
      env.rank = r;
      env.world_size = world;
      env.master_addr = "127.0.0.1";
      env.master_port = port;
      TcpRendezvous rv(env, "test", 20);
      got[size_t(r)] = rv.broadcast(r == 0 ? std::string("id\0with\0zeros", 13) : "");
      // Then one message for each rank in turn, as the MPI join uses it.
      if (r == 0)
        for (int k = 1; k < world; ++k) rv.send(k, "turn " + std::to_string(k));
      else
        second[size_t(r)] = rv.receive();
    });
  for (auto& t : ranks) t.join();
  for (int r = 0; r < world; ++r) EXPECT_EQ(got[size_t(r)], std::string("id\0with\0zeros", 13)) << r;
  for (int r = 1; r < world; ++r) EXPECT_EQ(second[size_t(r)], "turn " + std::to_string(r));
}

TEST(TcpRendezvous, MissingRanksAndMismatchesAreNamed) {
  const int port = free_port_for_test();
  DistEnv env;
  env.launcher = Launcher::torchrun;
  env.world_size = 3;
  env.master_addr = "127.0.0.1";
  env.master_port = port;
  // Rank 0 alone: ranks 1 and 2 never come.
  expect_error([&] { TcpRendezvous rv(env, "test", 0.3); }, {"rank 0", "missing ranks 1, 2", "WORLD_SIZE=3"});
  // A rank alone: rank 0 never answers.
  DistEnv one = env;
  one.rank = 1;
  expect_error([&] { TcpRendezvous rv(one, "test", 0.3); }, {"rank 1", "could not reach rank 0 at 127.0.0.1"});
  // A rank started with another world size.
  std::string rank1_error;
  std::thread other([&] {
    DistEnv e = env;
    e.rank = 1;
    e.world_size = 2;
    try {
      TcpRendezvous rv(e, "test", 5);
      rv.receive();
    } catch (const Error& err) {
      rank1_error = err.what();
    }
  });
  expect_error([&] { TcpRendezvous rv(env, "test", 5); }, {"rank 1 has WORLD_SIZE 2 but rank 0 has 3"});
  other.join();
  EXPECT_NE(rank1_error.find("refused this rank"), std::string::npos) << rank1_error;
  DistEnv no_master = env;
  no_master.master_addr.clear();
  expect_error([&] { TcpRendezvous rv(no_master, "test", 1); }, {"MASTER_ADDR"});
}

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

namespace {

MambaConfig tiny_config() {
  MambaConfig cfg;
  cfg.d_model = 16;
  cfg.n_layer = 2;
  cfg.vocab_size = 40;
  cfg.d_state = 4;
  return cfg;
}

// Micro-batch `index` of a stream of random tokens: (B, L) inputs and targets.
std::pair<Tensor, Tensor> batch_of(int64_t index, int64_t B = 2, int64_t L = 8) {
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

std::vector<std::vector<float>> grads_of(const MambaLM& m) {
  std::vector<std::vector<float>> out;
  for (const auto& [name, p] : m.named_parameters()) out.push_back(p.grad().to_vector<float>());
  return out;
}

std::vector<std::vector<float>> values_of(const MambaLM& m) {
  std::vector<std::vector<float>> out;
  for (const auto& [name, p] : m.named_parameters()) out.push_back(p.to_vector<float>());
  return out;
}

// The largest ||a_i - b_i|| / ||b_i|| over the tensors i.
double max_relative_difference(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
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

}  // namespace

TEST(GradBuckets, LayoutFollowsBackwardOrderAndTheCap) {
  Generator gen(1);
  MambaLM model(tiny_config(), gen);
  auto comm = make_local_communicator(Device::cpu());
  const NamedTensors params = model.named_parameters();
  const double cap_mb = 0.004;  // 1000 floats
  GradBuckets buckets(params, *comm, {cap_mb, GradReduction::all_reduce});
  ASSERT_GE(buckets.buckets().size(), 3u);
  // Bucket 0 starts with the last registered parameter; the embedding ends the last bucket.
  EXPECT_EQ(buckets.buckets().front().slots.front(), int(params.size()) - 1);
  EXPECT_EQ(buckets.buckets().back().slots.back(), 0);
  for (const auto& b : buckets.buckets()) {
    int64_t n = 0;
    for (int s : b.slots) {
      EXPECT_EQ(buckets.slots()[size_t(s)].offset, n);
      n += params[size_t(s)].second.numel();
    }
    EXPECT_EQ(n, b.numel);
    // Over the cap only when one parameter alone is.
    if (b.slots.size() > 1) {
      EXPECT_LE(double(b.numel) * 4, cap_mb * 1e6);
    }
  }
  // Each .grad is a view of its bucket's buffer.
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& s = buckets.slots()[i];
    EXPECT_EQ(params[i].second.grad().data_ptr(),
              static_cast<char*>(buckets.buffer(s.bucket).data_ptr()) + s.offset * int64_t(sizeof(float)));
  }
}

TEST(GradBuckets, OneRankGivesExactlyThePlainGradients) {
  // Accumulating into zeroed buffers is bitwise what the engine does with fresh gradients.
  Generator g1(3), g2(3);
  MambaLM plain(tiny_config(), g1), bucketed(tiny_config(), g2);
  auto comm = make_local_communicator(Device::cpu());
  GradBuckets buckets(bucketed.named_parameters(), *comm, {0.004, GradReduction::all_reduce});
  plain.zero_grad();
  buckets.zero_grad();
  for (int i = 0; i < 2; ++i) {
    auto [x, y] = batch_of(i);
    autograd::backward(scale(plain.loss(x, y), 0.5));
    buckets.set_sync(i == 1);
    autograd::backward(scale(bucketed.loss(x, y), 0.5));
  }
  buckets.finish();
  EXPECT_EQ(grads_of(bucketed), grads_of(plain));
}

TEST(GradBuckets, RanksGetTheMeanGradientAndReduceDuringBackward) {
  for (int world : {2, 3}) {
    // Reference: each rank's gradient computed alone, averaged in rank order.
    std::vector<std::vector<std::vector<float>>> per_rank;
    for (int r = 0; r < world; ++r) {
      Generator gen(5);
      MambaLM m(tiny_config(), gen);
      for (int i = 0; i < 2; ++i) {
        auto [x, y] = batch_of(10 * r + i);
        autograd::backward(scale(m.loss(x, y), 0.5));
      }
      per_rank.push_back(grads_of(m));
    }
    std::vector<std::vector<float>> mean = per_rank[0];
    for (size_t p = 0; p < mean.size(); ++p)
      for (size_t k = 0; k < mean[p].size(); ++k) {
        float s = per_rank[0][p][k];
        for (int r = 1; r < world; ++r) s += per_rank[size_t(r)][p][k];
        mean[p][k] = s * float(1.0 / world);
      }
    run_ranks(world, [&](Communicator& comm) {
      Generator gen(5);
      MambaLM m(tiny_config(), gen);
      GradBuckets buckets(m.named_parameters(), comm, {0.004, GradReduction::all_reduce});
      buckets.zero_grad();
      for (int i = 0; i < 2; ++i) {
        auto [x, y] = batch_of(10 * comm.rank() + i);
        buckets.set_sync(i == 1);
        autograd::backward(scale(m.loss(x, y), 0.5));
        // Only the last micro-batch's backward reduces, and it starts every bucket itself.
        EXPECT_EQ(buckets.started_during_backward(), i == 1 ? int(buckets.buckets().size()) : 0);
      }
      buckets.finish();
      EXPECT_LE(max_relative_difference(grads_of(m), mean), world == 2 ? 0.0 : 1e-6) << "world " << world;
    });
  }
}

TEST(GradBuckets, ParametersWithoutGradientContributeZeros) {
  run_ranks(2, [](Communicator& comm) {
    Tensor a = from_vector<float>({1, 2}, {2}).set_requires_grad(true);
    Tensor b = from_vector<float>({3}, {1}).set_requires_grad(true);
    GradBuckets buckets({{"a", a}, {"b", b}}, comm, {1e-6, GradReduction::all_reduce});
    ASSERT_EQ(buckets.buckets().size(), 2u);
    buckets.zero_grad();
    buckets.set_sync(true);
    // Rank 0 uses only a, rank 1 only b.
    autograd::backward(sum(mul(comm.rank() == 0 ? a : b, comm.rank() == 0 ? a : b)));
    buckets.finish();
    EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{1, 2}));  // (2a + 0) / 2
    EXPECT_EQ(b.grad().to_vector<float>(), (std::vector<float>{3}));
  });
}

namespace {

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
std::vector<std::vector<std::vector<float>>> train_rank(Communicator& comm, bool zero1, int steps,
                                                        const NamedTensors* resume_state,
                                                        const std::vector<std::vector<float>>* resume_params,
                                                        int first_step, RunResult* rank0) {
  Generator gen(7);
  MambaLM m(tiny_config(), gen);
  const Device device = comm.device();
  m.to(device);
  if (resume_params) {
    NamedTensors sd = m.named_parameters();
    for (size_t i = 0; i < sd.size(); ++i) sd[i].second.copy_(from_vector((*resume_params)[i], sd[i].second.shape()));
  }
  const AdamWConfig cfg{0.9, 0.95, 1e-8, 0.1};
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

RunResult train_threads(int world, bool zero1, int steps, const NamedTensors* resume_state = nullptr,
                        const std::vector<std::vector<float>>* resume_params = nullptr, int first_step = 0) {
  RunResult out;
  std::vector<std::vector<std::vector<std::vector<float>>>> by_rank(static_cast<size_t>(world));
  run_ranks(world, [&](Communicator& comm) {
    by_rank[size_t(comm.rank())] =
        train_rank(comm, zero1, steps, resume_state, resume_params, first_step, comm.rank() == 0 ? &out : nullptr);
  });
  out.params = by_rank[0];
  for (int r = 1; r < world; ++r) out.ranks_agree = out.ranks_agree && by_rank[size_t(r)] == by_rank[0];
  return out;
}

}  // namespace

TEST(ZeroOne, MatchesPlainAdamWOnTwoAndThreeRanks) {
  const RunResult one = train_threads(1, false, 3);
  for (int world : {2, 3}) {
    const RunResult plain = train_threads(world, false, 3), sharded = train_threads(world, true, 3);
    EXPECT_TRUE(plain.ranks_agree && sharded.ranks_agree) << world;
    for (int s = 0; s < 3; ++s) {
      // ZeRO-1 is plain data parallelism with the update cut into pieces: the same numbers, up to
      // the order the gradient norm is summed in.
      EXPECT_LE(max_relative_difference(sharded.params[size_t(s)], plain.params[size_t(s)]), 1e-7) << world;
      EXPECT_LE(max_relative_difference(sharded.params[size_t(s)], one.params[size_t(s)]), 1e-5) << world;
    }
    // Each rank holds its share of the moments (padding aside).
    EXPECT_LE(sharded.shard, (sharded.full + 64) / world + 64) << world;
    // The gathered moments are AdamW's, under AdamW's names.
    ASSERT_EQ(sharded.state.size(), plain.state.size());
    for (size_t i = 0; i < plain.state.size(); ++i) {
      EXPECT_EQ(sharded.state[i].first, plain.state[i].first);
      EXPECT_LE(relative_error(sharded.state[i].second, plain.state[i].second), 1e-5) << plain.state[i].first;
    }
  }
}

TEST(ZeroOne, StateSavedOnThreeRanksResumesOnTwoAndOne) {
  const RunResult straight = train_threads(3, true, 4);
  const RunResult first = train_threads(3, true, 2);
  for (int world : {2, 1}) {
    for (bool zero1 : {true, false}) {
      const RunResult rest = train_threads(world, zero1, 2, &first.state, &first.params.back(), 2);
      for (int s = 0; s < 2; ++s)
        EXPECT_LE(max_relative_difference(rest.params[size_t(s)], straight.params[size_t(s + 2)]), 1e-5)
            << "world " << world << " zero1 " << zero1;
    }
  }
}

// ---- MPI: this binary's MpiWorker tests run as the ranks of the jobs the DistMpi tests start ----

namespace {

// "1" in the ranks of a DistMpi job, "stall" in the job whose rank 1 stops taking part.
std::string worker_mode() {
  const char* v = std::getenv("SERPENT_MPI_WORKER");
  return v ? v : "";
}

}  // namespace

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

namespace {

std::map<std::string, std::string> worker_env(const std::string& mode) {
  return {{"SERPENT_MPI_WORKER", mode}, {"OMP_NUM_THREADS", "1"}};
}

std::vector<std::string> mpirun_worker(int ranks, const std::string& filter) {
  std::vector<std::string> a = mpirun_argv(ranks);
  for (const char* v : {"SERPENT_MPI_WORKER", "OMP_NUM_THREADS"}) a.insert(a.end(), {"-x", v});
  a.insert(a.end(), {self_path(), "--gtest_color=no", "--gtest_filter=" + filter});
  return a;
}

}  // namespace

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
    const std::string out = read_file(ranks[size_t(r)].output_path);
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

// ---- serpent train --nproc: the local launcher, with shell scripts for workers ----

namespace {

std::vector<std::string> sh(const std::string& script) {
  return {"/bin/sh", "-c", script};
}

}  // namespace

TEST(Launcher, GivesEachWorkerItsRankAndTheRendezvous) {
  const std::string dir = scratch_dir("launch_ok");
  const int code = run_local_workers(
      sh("echo $RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $MASTER_ADDR $NCCL_NVLS_ENABLE $EXTRA $MASTER_PORT > " +
         dir + "/rank$RANK"),
      3, {{"EXTRA", "x"}});
  EXPECT_EQ(code, 0);
  std::string port;
  for (int r = 0; r < 3; ++r) {
    const std::string line = read_file(dir + "/rank" + std::to_string(r));
    const std::string want = str_cat(r, " 3 ", r, " 3 127.0.0.1 0 x ");
    EXPECT_EQ(line.substr(0, want.size()), want) << line;
    const std::string p = line.substr(want.size());
    if (r == 0) port = p;
    EXPECT_EQ(p, port) << "every worker gets the same MASTER_PORT";
    EXPECT_GT(std::atoi(p.c_str()), 0);
  }
  std::filesystem::remove_all(dir);
}

TEST(Launcher, AFailingWorkerStopsTheOthersAndIsNamed) {
  // Rank 1 fails at once; the others would run for a minute.
  const auto start = std::chrono::steady_clock::now();
  ::testing::internal::CaptureStderr();
  const int code = run_local_workers(sh("if [ $RANK = 1 ]; then exit 3; fi; sleep 60"), 3, {}, 1.0);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 1);
  EXPECT_NE(err.find("worker rank 1 exited with code 3; stopped the other workers"), std::string::npos) << err;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 20);

  // A worker killed by a signal is reported as such; one that ignores SIGTERM is killed after the
  // grace period.
  const std::string dir = scratch_dir("launch_fail");
  const auto start2 = std::chrono::steady_clock::now();
  ::testing::internal::CaptureStderr();
  const int code2 = run_local_workers(
      sh("if [ $RANK = 0 ]; then while [ ! -e " + dir +
         "/ready ]; do sleep 0.01; done; kill -9 $$; fi; trap '' TERM; touch " + dir + "/ready; sleep 60"),
      2, {}, 0.5);
  const std::string err2 = ::testing::internal::GetCapturedStderr();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start2).count();
  EXPECT_EQ(code2, 1);
  EXPECT_NE(err2.find("worker rank 0 was killed by signal 9"), std::string::npos) << err2;
  EXPECT_GE(took, 0.5);
  EXPECT_LT(took, 20);
  std::filesystem::remove_all(dir);
}

TEST(Launcher, ForwardsStopSignalsToTheWorkers) {
  const std::string dir = scratch_dir("launch_sig");
  // Each worker waits for SIGTERM and reports it; the test sends one SIGTERM to this process.
  std::thread sender([&] {
    for (int i = 0; i < 200; ++i) {
      if (std::filesystem::exists(dir + "/ready0") && std::filesystem::exists(dir + "/ready1")) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(::getpid(), SIGTERM);
  });
  const int code = run_local_workers(sh("trap 'echo stopped > " + dir + "/got$RANK; exit 0' TERM; touch " + dir +
                                        "/ready$RANK; while true; do sleep 0.05; done"),
                                     2);
  sender.join();
  EXPECT_EQ(code, 0);
  EXPECT_TRUE(std::filesystem::exists(dir + "/got0") && std::filesystem::exists(dir + "/got1"));
  std::filesystem::remove_all(dir);
}

// ---- the same pieces on a GPU (NCCL at world size 1); skipped without one ----

namespace {

std::unique_ptr<Communicator> nccl_on_gpu0() {
  DistEnv env;
  env.master_addr = "127.0.0.1";
  env.master_port = free_port_for_test();
  return make_communicator(env, Device::cuda(0), {"nccl", 60});
}

}  // namespace

TEST(CudaDist, NcclCollectivesAtWorldSizeOne) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no GPU";
  if (!have_nccl()) GTEST_SKIP() << "this build has no NCCL";
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

TEST(CudaDist, BucketsAndZeroOneOnTheGpu) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no GPU";
  if (!have_nccl()) GTEST_SKIP() << "this build has no NCCL";
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
