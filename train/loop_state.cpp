#include "train/loop_state.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace serpent {

void LoopState::save_to(Checkpoint& c) const {
  TrainState& t = c.train;
  t.step = step;
  t.tokens_seen = tokens_seen;
  t.rng_seed = rng_seed;
  t.rng_offset = rng_offset;
  const std::array<int64_t, 5> pos = loader.to_array();
  t.loader = {std::vector<int64_t>(pos.begin(), pos.end())};
  t.ints = {
      {"nonfinite_run", nonfinite_run}, {"interval_steps", interval_steps}, {"interval_skipped", interval_skipped}};
  t.doubles = {{"interval_loss_sum", interval_loss_sum}, {"interval_grad_norm_sum", interval_grad_norm_sum}};
  c.optim_step = optim_step;
}

LoopState LoopState::load_from(const Checkpoint& c, const std::string& path) {
  const TrainState& t = c.train;
  SERPENT_CHECK(t.loader.size() == 1 && t.loader[0].size() == 5, "checkpoint ", path, " holds ", t.loader.size(),
                " data-loader positions; expected one (the position counts the windows of all ranks together, so ",
                "it is the same on every rank)");
  // Counters a checkpoint may lack (none written so far does) start from zero.
  auto get_int = [&](const char* k) { return t.ints.count(k) ? t.ints.at(k) : 0; };
  auto get_double = [&](const char* k) { return t.doubles.count(k) ? t.doubles.at(k) : 0.0; };
  LoopState s;
  s.step = t.step;
  s.tokens_seen = t.tokens_seen;
  s.rng_seed = t.rng_seed;
  s.rng_offset = t.rng_offset;
  std::array<int64_t, 5> pos;
  std::copy(t.loader[0].begin(), t.loader[0].end(), pos.begin());
  s.loader = LoaderState::from_array(pos);
  s.optim_step = c.optim_step;
  s.nonfinite_run = get_int("nonfinite_run");
  s.interval_steps = get_int("interval_steps");
  s.interval_skipped = get_int("interval_skipped");
  s.interval_loss_sum = get_double("interval_loss_sum");
  s.interval_grad_norm_sum = get_double("interval_grad_norm_sum");
  return s;
}

// The checkpoint form, field for field, as JSON: nlohmann writes doubles in their shortest
// round-trip form, so they arrive bitwise.
std::string LoopState::encode() const {
  Checkpoint c;
  save_to(c);
  const TrainState& t = c.train;
  const nlohmann::json j = {{"step", t.step},         {"tokens_seen", t.tokens_seen},
                            {"rng_seed", t.rng_seed}, {"rng_offset", t.rng_offset},
                            {"loader", t.loader},     {"ints", t.ints},
                            {"doubles", t.doubles},   {"optim_step", c.optim_step}};
  return j.dump();
}

LoopState LoopState::decode(const std::string& bytes) {
  const nlohmann::json j = nlohmann::json::parse(bytes);
  Checkpoint c;
  TrainState& t = c.train;
  t.step = j.at("step");
  t.tokens_seen = j.at("tokens_seen");
  t.rng_seed = j.at("rng_seed");
  t.rng_offset = j.at("rng_offset");
  t.loader = j.at("loader").get<std::vector<std::vector<int64_t>>>();
  t.ints = j.at("ints").get<std::map<std::string, int64_t>>();
  t.doubles = j.at("doubles").get<std::map<std::string, double>>();
  c.optim_step = j.at("optim_step");
  return load_from(c, "handed over by rank 0");
}

}  // namespace serpent
