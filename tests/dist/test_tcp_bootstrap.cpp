// The TCP rendezvous (dist/tcp_bootstrap.h): rank 0's broadcast and messages to each rank, and
// missing ranks and mismatched world sizes named.
#include <thread>

#include "dist/dist_env.h"
#include "dist/tcp_bootstrap.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

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

}  // namespace
