// Tensor basics: creation, dtypes, conversion, views, the counter-based RNG and errors.
#include <cmath>

#include "helpers.h"

using namespace serpent;
using namespace serpent::testing;

TEST(Tensor, CreationAndShape) {
  Tensor z = zeros({2, 3});
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.dim(), 2);
  EXPECT_EQ(z.size(-1), 3);
  EXPECT_EQ(z.dtype(), DType::f32);
  for (float v : z.to_vector<float>()) EXPECT_EQ(v, 0.0f);
  for (double v : full({4}, 2.5, DType::f64).to_vector<double>()) EXPECT_EQ(v, 2.5);
  std::vector<int64_t> r = arange(5).to_vector<int64_t>();
  EXPECT_EQ(r, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(Tensor::empty({0, 4}).numel(), 0);
}

TEST(Tensor, DtypeConversionRoundTrips) {
  Tensor a = from_vector<double>({1.5, -2.25, 3.0, 1e-3}, {4});
  std::vector<double> f = a.to(DType::f32).to(DType::f64).to_vector<double>();
  for (size_t i = 0; i < f.size(); ++i) EXPECT_EQ(f[i], double(float(a.to_vector<double>()[i])));
  // bf16 keeps 8 significant bits: 1e-3 rounds to the nearest representable value.
  std::vector<double> b = a.to(DType::bf16).to_vector<double>();
  EXPECT_EQ(b[0], 1.5);
  EXPECT_EQ(b[1], -2.25);
  EXPECT_NEAR(b[3], 1e-3, 1e-3 / 128);
  EXPECT_EQ(a.to(DType::i64).to_vector<int64_t>(), (std::vector<int64_t>{1, -2, 3, 0}));
}

TEST(Tensor, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 lies exactly between two bf16 values (1 and 1 + 2^-7): ties go to the even one, 1.
  EXPECT_EQ(float(bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(float(bf16(1.0f + 3.0f / 256)), 1.0f + 4.0f / 256);
  EXPECT_TRUE(std::isnan(float(bf16(std::nanf("")))));
}

TEST(Tensor, ViewsShareStorage) {
  Tensor a = arange(6, DType::f64);
  Tensor v = a.view({2, -1});
  EXPECT_EQ(v.shape(), (Shape{2, 3}));
  v.fill_(7.0);
  EXPECT_EQ(a.to_vector<double>()[5], 7.0);
  Tensor c = a.clone();
  c.fill_(1.0);
  EXPECT_EQ(a.to_vector<double>()[0], 7.0);
}

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

TEST(Tensor, ErrorsNameTheProblem) {
  expect_error([] { Device::parse("gpu:1"); }, {"gpu:1", "cuda:N"});
  expect_error([] { zeros({2}).to(DType::f32).data<double>(); }, {"f64", "f32[2]"});
  expect_error([] { zeros({2, 3}).view({4, 2}); }, {"[4, 2]", "6 elements"});
  expect_error([] { zeros({2, 3}).item(); }, {"one-element"});
}
