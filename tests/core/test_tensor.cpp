// Tensors: creation, views that share storage, the errors of misuse, and copies to a GPU and
// back. Dtypes and conversions are in test_dtype.cpp, the RNG in test_rng.cpp.
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

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

TEST(Tensor, ErrorsNameTheProblem) {
  expect_error([] { Device::parse("gpu:1"); }, {"gpu:1", "cuda:N"});
  expect_error([] { zeros({2}).to(DType::f32).data<double>(); }, {"f64", "f32[2]"});
  expect_error([] { zeros({2, 3}).view({4, 2}); }, {"[4, 2]", "6 elements"});
  expect_error([] { zeros({2, 3}).item(); }, {"one-element"});
}

class TensorCuda : public CudaTest {};

TEST_F(TensorCuda, CopiesRoundTripEveryDtype) {
  Generator gen(seed_);
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    Tensor h = randn({3, 1001}, gen, dt);
    Tensor back = h.to(gpu_).to(Device::cpu());
    EXPECT_EQ(back.to_vector<double>(), h.to_vector<double>()) << dtype_name(dt);
  }
  Tensor ids = from_vector<int64_t>({5, -3, 1ll << 40}, {3});
  EXPECT_EQ(ids.to(gpu_).to(Device::cpu()).to_vector<int64_t>(), ids.to_vector<int64_t>());
}

}  // namespace
