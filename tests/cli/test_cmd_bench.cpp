// `serpent bench` on the cpu: a training step and the evaluation forward (--forward) report their
// time and tokens/s; an untrained model's loss is near ln(vocab); bad combinations are refused.
#include <cmath>

#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

// The loss printed on the line starting with `head`, or NaN.
double printed_loss(const std::string& output, const std::string& head) {
  for (const std::string& line : lines_of(output)) {
    if (line.rfind(head, 0) != 0) continue;
    const size_t at = line.find("(loss ");
    if (at != std::string::npos) return std::stod(line.substr(at + 6));
  }
  return NAN;
}

const char* kTiny = " --d-model 32 --n-layer 2 --vocab 256 --batch 2 --seq-len 16 --steps 2 --warmup 1";

}  // namespace

TEST(BenchCommand, TrainingStepAndForwardOnTheCpu) {
  const ShellResult train = run_serpent_shell(std::string("bench") + kTiny);
  ASSERT_EQ(train.code, 0) << train.output;
  EXPECT_NE(train.output.find("tokens/s"), std::string::npos) << train.output;
  EXPECT_TRUE(std::isfinite(printed_loss(train.output, "train step:"))) << train.output;

  const ShellResult fwd = run_serpent_shell(std::string("bench --forward") + kTiny);
  ASSERT_EQ(fwd.code, 0) << fwd.output;
  const double loss = printed_loss(fwd.output, "forward (eval):");
  EXPECT_NEAR(loss, std::log(256.0), 0.5) << fwd.output;
  EXPECT_EQ(fwd.output.find("train step"), std::string::npos) << fwd.output;
  // The forward changes nothing: a second run prints the same loss.
  EXPECT_EQ(printed_loss(run_serpent_shell(std::string("bench --forward") + kTiny).output, "forward (eval):"), loss);
}

TEST(BenchCommand, ForwardTakesNeitherBreakdownNorDist) {
  const ShellResult r = run_serpent_shell(std::string("bench --forward --breakdown") + kTiny);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("--forward times the evaluation forward alone"), std::string::npos) << r.output;
}
