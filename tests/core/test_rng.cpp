// The counter-based RNG: streams by seed, draws that split without changing the numbers, the
// moments of normal and uniform draws, and the same numbers on the GPU as on the host.
#include <cmath>

#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(Rng, SameSeedSameNumbersDifferentSeedDifferent) {
  Generator g1(42), g2(42), g3(43);
  std::vector<double> a = randn({1000}, g1, DType::f64).to_vector<double>();
  std::vector<double> b = randn({1000}, g2, DType::f64).to_vector<double>();
  std::vector<double> c = randn({1000}, g3, DType::f64).to_vector<double>();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // Consecutive draws continue the stream instead of repeating it.
  std::vector<double> d = randn({1000}, g1, DType::f64).to_vector<double>();
  EXPECT_NE(a, d);
}

TEST(Rng, DrawSplitIsTheSameStream) {
  // Element i depends only on (seed, offset + i): one draw of 10 equals draws of 4 then 6.
  Generator whole(7), split(7);
  std::vector<double> all = uniform({10}, 0, 1, whole, DType::f64).to_vector<double>();
  std::vector<double> first = uniform({4}, 0, 1, split, DType::f64).to_vector<double>();
  std::vector<double> rest = uniform({6}, 0, 1, split, DType::f64).to_vector<double>();
  first.insert(first.end(), rest.begin(), rest.end());
  EXPECT_EQ(all, first);
}

TEST(Rng, Moments) {
  Generator g(1);
  const int n = 200000;
  std::vector<double> x = randn({n}, g, DType::f64, Device::cpu(), 1.0, 2.0).to_vector<double>();
  double m = 0, v = 0;
  for (double e : x) m += e;
  m /= n;
  for (double e : x) v += (e - m) * (e - m);
  v /= n;
  EXPECT_NEAR(m, 1.0, 4 * 2.0 / std::sqrt(n));
  EXPECT_NEAR(std::sqrt(v), 2.0, 0.02);
  std::vector<double> u = uniform({n}, -3, 5, g, DType::f64).to_vector<double>();
  double lo = 1e9, hi = -1e9, mu = 0;
  for (double e : u) lo = std::min(lo, e), hi = std::max(hi, e), mu += e / n;
  EXPECT_GE(lo, -3.0);
  EXPECT_LT(hi, 5.0);
  EXPECT_NEAR(mu, 1.0, 4 * 8 / std::sqrt(12.0 * n));
}

class RngCuda : public CudaTest {};

TEST_F(RngCuda, DrawsAreTheSameOnEveryDevice) {
  for (DType dt : {DType::f32, DType::bf16}) {
    Generator gc(seed_), gg(seed_);
    EXPECT_EQ(randn({4097}, gc, dt).to_vector<double>(), randn({4097}, gg, dt, gpu_).to_vector<double>());
    EXPECT_EQ(uniform({333}, -2, 3, gc, dt).to_vector<double>(),
              uniform({333}, -2, 3, gg, dt, gpu_).to_vector<double>());
  }
  // In f64 the device's log and cos may differ from the host's in the last bit.
  Generator gc(seed_), gg(seed_);
  EXPECT_LE(relative_error(randn({4097}, gg, DType::f64, gpu_), randn({4097}, gc, DType::f64)), 1e-15);
}

}  // namespace
