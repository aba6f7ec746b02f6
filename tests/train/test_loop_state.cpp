// The loop state (train/loop_state.h): one serialization, so that a checkpoint, a resume and
// rank 0's hand-over to the other ranks carry the same values, bitwise.
#include <cmath>

#include "tests/helpers.h"
#include "train/loop_state.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

LoopState awkward_state() {
  LoopState s;
  s.step = 123;
  s.tokens_seen = 123 * 524288;
  s.rng_seed = 0xfedcba9876543210ull;  // above 2^63: unsigned all the way
  s.rng_offset = 77;
  s.loader = LoaderState{0x8000000000000001ull, 3, 4097, 2048, 99991};
  s.optim_step = 120;
  s.nonfinite_run = 2;
  s.interval_loss_sum = 1.0 / 3 + 1e-17;  // needs every digit
  s.interval_grad_norm_sum = std::nextafter(0.7, 1.0);
  s.interval_steps = 7;
  s.interval_skipped = 1;
  return s;
}

}  // namespace

TEST(LoopState, CheckpointFormRoundTrips) {
  const LoopState s = awkward_state();
  Checkpoint c;
  s.save_to(c);
  EXPECT_EQ(c.train.step, 123);
  EXPECT_EQ(c.optim_step, 120);
  ASSERT_EQ(c.train.loader.size(), 1u);
  EXPECT_EQ(c.train.loader[0].size(), 5u);
  EXPECT_EQ(LoopState::load_from(c, "x.h5"), s);
}

TEST(LoopState, TheHandOverIsBitwise) {
  const LoopState s = awkward_state();
  const LoopState back = LoopState::decode(s.encode());
  EXPECT_EQ(back, s);
  EXPECT_EQ(std::memcmp(&back.interval_loss_sum, &s.interval_loss_sum, sizeof(double)), 0);
}

TEST(LoopState, ThroughACheckpointFile) {
  TempDir dir;
  const LoopState s = awkward_state();
  Checkpoint c;
  c.config_yaml = "model:\n  d_model: 8\n";
  c.model = {{"w", zeros({2})}};
  c.optim = {{"w.exp_avg", zeros({2})}, {"w.exp_avg_sq", zeros({2})}};  // the optimizer step goes with them
  s.save_to(c);
  save_checkpoint(dir / "c.h5", c);
  EXPECT_EQ(LoopState::load_from(load_checkpoint(dir / "c.h5"), dir / "c.h5"), s);
}

TEST(LoopState, OneLoaderPositionOrAClearError) {
  Checkpoint c;
  awkward_state().save_to(c);
  c.train.loader.push_back(c.train.loader[0]);
  expect_error([&] { LoopState::load_from(c, "two.h5"); }, {"checkpoint two.h5", "2 data-loader positions"});
  c.train.loader = {{1, 2, 3}};
  expect_error([&] { LoopState::load_from(c, "short.h5"); }, {"checkpoint short.h5", "data-loader position"});
}
