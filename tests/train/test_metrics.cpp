// metrics.jsonl (train/metrics.h): records round-trip exactly, a cut last line is dropped, and a
// resumed writer keeps what came before its step.
#include <cmath>
#include <fstream>

#include "tests/helpers.h"
#include "train/metrics.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(Metrics, RecordsRoundTripExactlyAndACutLastLineIsDropped) {
  TempDir dir;
  MetricsRecord a;
  a.step = 7;
  a.loss = 2.0 / 3.0;
  a.lr = 3e-3 * std::cos(0.1);
  a.grad_norm = 1.0 / 7.0;
  a.tokens = 1 << 20;
  a.tokens_per_s = 1234.5;
  a.val_loss = std::log(3.0);
  a.val_ppl = 3.0;
  MetricsRecord skipped;
  skipped.step = 8;
  skipped.loss = skipped.grad_norm = NAN;
  skipped.skipped = 1;
  {
    MetricsWriter w(dir / "m.jsonl", -1);
    w.write(a);
    w.write(skipped);
  }
  std::ofstream(dir / "m.jsonl", std::ios::app) << "{\"step\": 9, \"lo";
  const std::vector<MetricsRecord> back = read_metrics(dir / "m.jsonl");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].loss, a.loss);
  EXPECT_EQ(back[0].lr, a.lr);
  EXPECT_EQ(back[0].grad_norm, a.grad_norm);
  EXPECT_EQ(*back[0].val_loss, *a.val_loss);
  EXPECT_TRUE(std::isnan(back[1].loss));
  EXPECT_EQ(back[1].skipped, 1);
  // A resumed writer keeps what came before its step.
  MetricsWriter resumed(dir / "m.jsonl", 7);
  EXPECT_EQ(read_metrics(dir / "m.jsonl").size(), 1u);
}

}  // namespace
