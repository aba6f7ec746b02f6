// Learning-rate schedules: values at chosen steps against closed forms worked out here, and the
// errors for settings that do not fit together.
#include <cmath>

#include "optim/schedule.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

ScheduleConfig make(ScheduleKind kind, double lr, double min_lr, int64_t warmup, int64_t total,
                    double decay_fraction = 0.2) {
  ScheduleConfig c;
  c.kind = kind;
  c.lr = lr;
  c.min_lr = min_lr;
  c.warmup_steps = warmup;
  c.total_steps = total;
  c.decay_fraction = decay_fraction;
  return c;
}

TEST(Schedule, WarmupIsLinearFromTheFirstStep) {
  LRSchedule s(make(ScheduleKind::cosine, 1e-3, 1e-4, 10, 110));
  EXPECT_DOUBLE_EQ(s.lr(0), 1e-4);  // 1/10 of the peak
  EXPECT_DOUBLE_EQ(s.lr(4), 5e-4);
  EXPECT_DOUBLE_EQ(s.lr(9), 1e-3);  // the last warmup step reaches the peak
}

TEST(Schedule, CosineAtChosenSteps) {
  LRSchedule s(make(ScheduleKind::cosine, 1e-3, 1e-4, 10, 110));  // 100 decay steps after warmup
  EXPECT_DOUBLE_EQ(s.lr(10), 1e-3);                               // start of the decay: the peak
  EXPECT_NEAR(s.lr(60), 5.5e-4, 1e-15);                           // halfway: the mean of peak and floor
  // (1 + cos(pi p)) / 2 = cos^2(pi p / 2): a quarter of the way, cos^2(pi / 8) = (2 + sqrt 2) / 4.
  EXPECT_NEAR(s.lr(35), 1e-4 + 9e-4 * (2 + std::sqrt(2.0)) / 4, 1e-15);
  EXPECT_NEAR(s.lr(85), 1e-4 + 9e-4 * (2 - std::sqrt(2.0)) / 4, 1e-15);
  const double c = std::cos(M_PI * 0.99 / 2);
  EXPECT_NEAR(s.lr(109), 1e-4 + 9e-4 * c * c, 1e-15);
  EXPECT_DOUBLE_EQ(s.lr(110), 1e-4);  // the end and beyond: the floor
  EXPECT_DOUBLE_EQ(s.lr(5000), 1e-4);
  for (int64_t step = 11; step < 120; ++step) EXPECT_LE(s.lr(step), s.lr(step - 1)) << "step " << step;
}

TEST(Schedule, CosineWithoutWarmupStartsAtThePeak) {
  LRSchedule s(make(ScheduleKind::cosine, 6e-4, 0.0, 0, 4));
  EXPECT_DOUBLE_EQ(s.lr(0), 6e-4);
  EXPECT_NEAR(s.lr(2), 3e-4, 1e-18);
  EXPECT_DOUBLE_EQ(s.lr(4), 0.0);
}

TEST(Schedule, WsdAtChosenSteps) {
  // 100 steps, 20% decay: stable at the peak until step 80, then 1 - sqrt(p) over 20 steps.
  LRSchedule s(make(ScheduleKind::wsd, 2e-3, 1e-4, 5, 100, 0.2));
  EXPECT_EQ(s.decay_start(), 80);
  EXPECT_DOUBLE_EQ(s.lr(0), 4e-4);
  EXPECT_DOUBLE_EQ(s.lr(4), 2e-3);
  EXPECT_DOUBLE_EQ(s.lr(5), 2e-3);
  EXPECT_DOUBLE_EQ(s.lr(50), 2e-3);
  EXPECT_DOUBLE_EQ(s.lr(79), 2e-3);
  EXPECT_DOUBLE_EQ(s.lr(80), 2e-3);
  EXPECT_NEAR(s.lr(85), 1.05e-3, 1e-15);  // p = 1/4: sqrt = 1/2, halfway between 2e-3 and 1e-4
  EXPECT_NEAR(s.lr(96), 1e-4 + 1.9e-3 * (1 - std::sqrt(0.8)), 1e-15);
  EXPECT_DOUBLE_EQ(s.lr(100), 1e-4);
  EXPECT_DOUBLE_EQ(s.lr(1000), 1e-4);
}

TEST(Schedule, WsdDecayStepsRound) {
  LRSchedule s(make(ScheduleKind::wsd, 1.0, 0.0, 0, 7, 0.3));  // 2.1 -> 2 decay steps
  EXPECT_EQ(s.decay_start(), 5);
  EXPECT_DOUBLE_EQ(s.lr(4), 1.0);
  EXPECT_DOUBLE_EQ(s.lr(5), 1.0);
  EXPECT_NEAR(s.lr(6), 1 - std::sqrt(0.5), 1e-15);
}

TEST(Schedule, ConstantWithWarmup) {
  LRSchedule s(make(ScheduleKind::constant, 8e-3, 1e-5, 4, 50));
  EXPECT_DOUBLE_EQ(s.lr(0), 2e-3);
  EXPECT_DOUBLE_EQ(s.lr(1), 4e-3);
  EXPECT_DOUBLE_EQ(s.lr(2), 6e-3);
  EXPECT_DOUBLE_EQ(s.lr(3), 8e-3);
  EXPECT_DOUBLE_EQ(s.lr(4), 8e-3);
  EXPECT_DOUBLE_EQ(s.lr(49), 8e-3);
  EXPECT_DOUBLE_EQ(s.lr(500), 8e-3);
}

TEST(Schedule, Names) {
  for (ScheduleKind k : {ScheduleKind::cosine, ScheduleKind::wsd, ScheduleKind::constant})
    EXPECT_EQ(schedule_kind_from_name(schedule_kind_name(k)), k);
  expect_error([] { schedule_kind_from_name("linear"); }, {"optim.schedule", "'linear'", "cosine, wsd or constant"});
}

TEST(Schedule, SettingsThatDoNotFit) {
  expect_error([] { LRSchedule(make(ScheduleKind::cosine, 1e-3, 1e-4, 200, 100)); },
               {"optim.warmup_steps", "[0, 100]", "200"});
  expect_error([] { LRSchedule(make(ScheduleKind::cosine, 1e-3, 2e-3, 0, 100)); }, {"optim.min_lr", "0.002"});
  expect_error([] { LRSchedule(make(ScheduleKind::constant, 0.0, 0.0, 0, 100)); }, {"optim.lr", "positive"});
  expect_error([] { LRSchedule(make(ScheduleKind::wsd, 1e-3, 0.0, 90, 100, 0.2)); },
               {"optim.decay_fraction", "20 decay steps", "90 warmup steps"});
  expect_error([] { LRSchedule(make(ScheduleKind::wsd, 1e-3, 0.0, 0, 100, 0.0)); }, {"optim.decay_fraction", "(0, 1]"});
  expect_error([] { LRSchedule(make(ScheduleKind::cosine, 1e-3, 0.0, 0, 10)).lr(-1); }, {"step", "-1"});
}

}  // namespace
