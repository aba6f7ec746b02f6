// Learning-rate schedules, as a pure function of the 0-based index of the optimizer step about to
// be taken (so a resumed run gets the same rates from its step counter alone).
//
// Every schedule starts with a linear warmup: lr(s) = peak * (s + 1) / warmup_steps for
// s < warmup_steps (the first update already moves; step warmup_steps - 1 is at the peak).
// After warmup, with total = total_steps:
//   cosine:   p = (s - warmup) / (total - warmup);  lr = min_lr + (peak - min_lr) (1 + cos(pi p)) / 2
//   wsd:      warmup-stable-decay (Hägele et al. 2024, "Scaling Laws and Compute-Optimal Training
//             Beyond Fixed Training Durations"): the peak until the last decay_steps =
//             round(decay_fraction * total) steps, then the "1-sqrt" cooldown that paper found
//             better than linear:  p = (s - (total - decay_steps)) / decay_steps;
//             lr = min_lr + (peak - min_lr) (1 - sqrt(p))
//   constant: the peak.
// Steps at or past total stay at the schedule's final value (min_lr for cosine and wsd).
#pragma once

#include <cstdint>
#include <string>

namespace serpent {

enum class ScheduleKind { cosine, wsd, constant };

ScheduleKind schedule_kind_from_name(const std::string& name);  // "cosine", "wsd", "constant"
const char* schedule_kind_name(ScheduleKind kind);

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::cosine;
  double lr = 3e-3;      // peak
  double min_lr = 1e-5;  // end of the decay (cosine, wsd)
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double decay_fraction = 0.2;  // wsd: share of total_steps spent decaying
};

class LRSchedule {
 public:
  // Throws serpent::Error naming the optim.* key when the settings do not fit together.
  explicit LRSchedule(const ScheduleConfig& cfg);
  double lr(int64_t step) const;
  const ScheduleConfig& config() const { return cfg_; }
  // wsd: the first step of the decay phase (total_steps - decay steps).
  int64_t decay_start() const { return decay_start_; }

 private:
  ScheduleConfig cfg_;
  int64_t decay_start_;
};

}  // namespace serpent
