// ZeRO-1 (optim/zero1.h) on W ranks run as threads (tests/dist/thread_comm.h): the same weights as
// plain data-parallel AdamW and as one process, AdamW's moments gathered under AdamW's names, and
// state saved on three ranks resumed on two and one. Over MPI and NCCL in dist/test_comm_mpi.cpp
// and dist/test_comm_nccl.cpp.
#include "tests/dist/thread_comm.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

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

TEST(ZeroOne, Bf16MomentsMatchPlainAdamWWithBf16Moments) {
  const RunResult plain = train_threads(2, false, 3, nullptr, nullptr, 0, true);
  const RunResult sharded = train_threads(2, true, 3, nullptr, nullptr, 0, true);
  const RunResult f32 = train_threads(2, true, 3);
  EXPECT_TRUE(plain.ranks_agree && sharded.ranks_agree);
  for (int s = 0; s < 3; ++s)
    EXPECT_LE(max_relative_difference(sharded.params[size_t(s)], plain.params[size_t(s)]), 1e-5) << s;
  // The rounding is real: from the second step on, the weights move off the f32-moment run's.
  EXPECT_GT(max_relative_difference(sharded.params[2], f32.params[2]), 0.0);
  ASSERT_EQ(sharded.state.size(), plain.state.size());
  // Up to the order the gradient norm is summed in, which may move a moment by one bf16 step.
  for (size_t i = 0; i < plain.state.size(); ++i)
    EXPECT_LE(relative_error(sharded.state[i].second, plain.state[i].second), 1.0 / 256) << plain.state[i].first;
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

}  // namespace
