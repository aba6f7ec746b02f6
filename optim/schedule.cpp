#include "optim/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace serpent {

ScheduleKind schedule_kind_from_name(const std::string& name) {
  if (name == "cosine") return ScheduleKind::cosine;
  if (name == "wsd") return ScheduleKind::wsd;
  if (name == "constant") return ScheduleKind::constant;
  fail("optim.schedule: unknown schedule '", name, "'; expected cosine, wsd or constant");
}

const char* schedule_kind_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::cosine:
      return "cosine";
    case ScheduleKind::wsd:
      return "wsd";
    case ScheduleKind::constant:
      return "constant";
  }
  return "?";
}

LRSchedule::LRSchedule(const ScheduleConfig& cfg) : cfg_(cfg), decay_start_(cfg.total_steps) {
  SERPENT_CHECK(std::isfinite(cfg.lr) && cfg.lr > 0, "optim.lr must be a positive number, got ", cfg.lr);
  SERPENT_CHECK(std::isfinite(cfg.min_lr) && cfg.min_lr >= 0 && cfg.min_lr <= cfg.lr,
                "optim.min_lr must lie in [0, optim.lr = ", cfg.lr, "], got ", cfg.min_lr);
  SERPENT_CHECK(cfg.total_steps >= 1, "the schedule needs at least one training step, got ", cfg.total_steps);
  SERPENT_CHECK(cfg.warmup_steps >= 0 && cfg.warmup_steps <= cfg.total_steps, "optim.warmup_steps must lie in [0, ",
                cfg.total_steps, "] (the run's total steps), got ", cfg.warmup_steps);
  if (cfg.kind == ScheduleKind::wsd) {
    SERPENT_CHECK(cfg.decay_fraction > 0 && cfg.decay_fraction <= 1, "optim.decay_fraction must lie in (0, 1], got ",
                  cfg.decay_fraction);
    const int64_t decay_steps =
        std::max<int64_t>(1, int64_t(std::llround(cfg.decay_fraction * double(cfg.total_steps))));
    decay_start_ = cfg.total_steps - decay_steps;
    SERPENT_CHECK(decay_start_ >= cfg.warmup_steps, "optim.decay_fraction ", cfg.decay_fraction, " gives ", decay_steps,
                  " decay steps, which overlap the ", cfg.warmup_steps, " warmup steps (optim.warmup_steps) of a ",
                  cfg.total_steps, "-step run");
  }
}

double LRSchedule::lr(int64_t step) const {
  const double peak = cfg_.lr, low = cfg_.min_lr;
  SERPENT_CHECK(step >= 0, "LRSchedule::lr: step must be non-negative, got ", step);
  if (step < cfg_.warmup_steps) return peak * double(step + 1) / double(cfg_.warmup_steps);
  switch (cfg_.kind) {
    case ScheduleKind::constant:
      return peak;
    case ScheduleKind::cosine: {
      const int64_t span = cfg_.total_steps - cfg_.warmup_steps;
      if (step >= cfg_.total_steps) return low;
      const double p = double(step - cfg_.warmup_steps) / double(span);
      return low + (peak - low) * 0.5 * (1.0 + std::cos(M_PI * p));
    }
    case ScheduleKind::wsd: {
      if (step < decay_start_) return peak;
      if (step >= cfg_.total_steps) return low;
      const double p = double(step - decay_start_) / double(cfg_.total_steps - decay_start_);
      return low + (peak - low) * (1.0 - std::sqrt(p));
    }
  }
  return peak;
}

}  // namespace serpent
