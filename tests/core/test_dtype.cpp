// Dtypes: conversions between them on the host (round trips, bf16 rounding to nearest even) and
// the device's conversion kernels (core/cuda/convert.cu) against the host's.
#include <cmath>

#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(Dtype, ConversionRoundTrips) {
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

TEST(Dtype, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 lies exactly between two bf16 values (1 and 1 + 2^-7): ties go to the even one, 1.
  EXPECT_EQ(float(bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(float(bf16(1.0f + 3.0f / 256)), 1.0f + 4.0f / 256);
  EXPECT_TRUE(std::isnan(float(bf16(std::nanf("")))));
}

class DtypeCuda : public CudaTest {};

TEST_F(DtypeCuda, ConversionsMatchTheHost) {
  Generator gen(seed_);
  Tensor x = randn({7, 131}, gen, DType::f64, Device::cpu(), 0, 100);
  for (DType to : {DType::f32, DType::bf16, DType::i32, DType::i64}) {
    EXPECT_EQ(x.to(gpu_).to(to).to_vector<double>(), x.to(to).to_vector<double>()) << dtype_name(to);
    EXPECT_EQ(x.to(DType::f32).to(gpu_).to(to).to_vector<double>(), x.to(DType::f32).to(to).to_vector<double>())
        << "from f32 to " << dtype_name(to);
  }
  Tensor f = full({5}, -1.25, DType::bf16, gpu_);
  EXPECT_EQ(f.to_vector<double>(), std::vector<double>(5, -1.25));
}

}  // namespace
