// The CUDA backend's foundations against the CPU: copies, the RNG, conversions, elementwise ops,
// reductions, column slices and cuBLAS matmuls (forward and backward), plus the caching
// allocator's steady state. Inputs are fresh random draws every run (the seed is printed).
#include <random>

#include "helpers.h"
#ifdef SERPENT_CUDA
#include "core/cuda/runtime.h"
#endif

using namespace serpent;
using namespace serpent::testing;

namespace {

class CudaBasic : public CudaTest {};

double tolerance(DType dt) {
  return dt == DType::bf16 ? 1e-2 : dt == DType::f32 ? 1e-5 : 1e-12;
}

TEST_F(CudaBasic, CopiesRoundTripEveryDtype) {
  Generator gen(seed_);
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    Tensor h = randn({3, 1001}, gen, dt);
    Tensor back = h.to(gpu_).to(Device::cpu());
    EXPECT_EQ(back.to_vector<double>(), h.to_vector<double>()) << dtype_name(dt);
  }
  Tensor ids = from_vector<int64_t>({5, -3, 1ll << 40}, {3});
  EXPECT_EQ(ids.to(gpu_).to(Device::cpu()).to_vector<int64_t>(), ids.to_vector<int64_t>());
}

TEST_F(CudaBasic, RandomDrawsAreTheSameOnEveryDevice) {
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

TEST_F(CudaBasic, ConversionsMatchTheHost) {
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

// Runs fn on cpu inputs and on their cuda copies; compares outputs and input gradients.
void expect_parity(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& cpu_inputs,
                   DType dt, Device gpu) {
  std::vector<Tensor> c, g;
  for (const Tensor& t : cpu_inputs) {
    // The reference runs in f64 on the host from the very values the device sees (rounded to dt).
    Tensor rounded = t.to(dt).to(DType::f64);
    c.push_back(rounded.clone().set_requires_grad(true));
    g.push_back(rounded.to(dt).to(gpu).set_requires_grad(true));
  }
  Tensor out_c = fn(c), out_g = fn(g);
  ASSERT_EQ(out_g.device(), gpu);
  EXPECT_LE(relative_error(out_g, out_c), tolerance(dt)) << "forward, " << dtype_name(dt);
  Generator gen(99);
  Tensor w = randn(out_c.shape(), gen, DType::f64);
  autograd::backward(sum(mul(out_c, w)));
  autograd::backward(sum(mul(out_g, w.to(dt).to(gpu))));
  for (size_t i = 0; i < c.size(); ++i)
    EXPECT_LE(relative_error(g[i].grad(), c[i].grad()), tolerance(dt) * 2)
        << "gradient of input " << i << ", " << dtype_name(dt);
}

TEST_F(CudaBasic, ElementwiseParity) {
  Generator gen(seed_);
  for (int64_t n : {1, 7, 100003}) {
    Tensor a = uniform({n}, -4, 4, gen, DType::f64), b = uniform({n}, -4, 4, gen, DType::f64);
    Tensor big = uniform({n}, 15, 25, gen, DType::f64);  // around softplus's threshold
    for (DType dt : {DType::f32, DType::bf16}) {
      SCOPED_TRACE(str_cat("n ", n, " ", dtype_name(dt)));
      expect_parity([](const std::vector<Tensor>& in) { return add(in[0], in[1]); }, {a, b}, dt, gpu_);
      expect_parity([](const std::vector<Tensor>& in) { return sub(in[0], in[1]); }, {a, b}, dt, gpu_);
      expect_parity([](const std::vector<Tensor>& in) { return mul(in[0], in[1]); }, {a, b}, dt, gpu_);
      expect_parity([](const std::vector<Tensor>& in) { return scale(in[0], 0.37); }, {a}, dt, gpu_);
      expect_parity([](const std::vector<Tensor>& in) { return exp(in[0]); }, {a}, dt, gpu_);
      expect_parity([](const std::vector<Tensor>& in) { return silu(in[0]); }, {a}, dt, gpu_);
      expect_parity([](const std::vector<Tensor>& in) { return softplus(in[0]); }, {a}, dt, gpu_);
      expect_parity([](const std::vector<Tensor>& in) { return softplus(in[0]); }, {big}, dt, gpu_);
    }
  }
}

TEST_F(CudaBasic, SumAndSliceParity) {
  Generator gen(seed_);
  Tensor a = uniform({37, 129}, -1, 1, gen, DType::f64);
  for (DType dt : {DType::f32, DType::bf16}) {
    expect_parity([](const std::vector<Tensor>& in) { return sum(in[0]); }, {a}, dt, gpu_);
    expect_parity([](const std::vector<Tensor>& in) { return slice_last(in[0], 5, 100); }, {a}, dt, gpu_);
    expect_parity([](const std::vector<Tensor>& in) { return slice_last(in[0], 128, 1); }, {a}, dt, gpu_);
  }
  // A large sum exercises the two-pass reduction across many blocks.
  Tensor big = uniform({3000017}, 0, 1, gen, DType::f64);
  EXPECT_LE(relative_error(sum(big.to(DType::f32).to(gpu_)), sum(big.to(DType::f32).to(DType::f64))), 1e-5);
}

TEST_F(CudaBasic, MatmulParityForwardAndBackward) {
  Generator gen(seed_);
  for (auto [M, K, N] : {std::tuple{1, 1, 1}, {7, 13, 5}, {257, 129, 65}, {64, 1536, 48}}) {
    Tensor a = uniform({M, K}, -1, 1, gen, DType::f64), b = uniform({K, N}, -1, 1, gen, DType::f64);
    Tensor w = uniform({N, K}, -1, 1, gen, DType::f64);
    for (DType dt : {DType::f32, DType::bf16}) {
      SCOPED_TRACE(str_cat(M, "x", K, "x", N, " ", dtype_name(dt)));
      expect_parity([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b}, dt, gpu_);
      expect_parity([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); }, {a, w}, dt, gpu_);
    }
  }
}

#ifdef SERPENT_CUDA
TEST_F(CudaBasic, CachingAllocatorReachesASteadyState) {
  Generator gen(seed_);
  Tensor x = randn({512, 256}, gen, DType::f32, gpu_).set_requires_grad(true);
  Tensor w = randn({128, 256}, gen, DType::f32, gpu_).set_requires_grad(true);
  auto step = [&] {
    x.zero_grad();
    w.zero_grad();
    autograd::backward(sum(silu(linear(x, w))));
  };
  step();
  step();
  const int64_t mallocs = cuda::CachingAllocator::get().stats(0).device_mallocs;
  for (int i = 0; i < 5; ++i) step();
  EXPECT_EQ(cuda::CachingAllocator::get().stats(0).device_mallocs, mallocs);
  EXPECT_GT(cuda::CachingAllocator::get().stats(0).peak_allocated, size_t(512 * 256 * 4));
}

TEST_F(CudaBasic, OutOfMemoryIsAClearError) {
  expect_error([&] { Tensor::empty({int64_t(1) << 40}, DType::f32, gpu_); }, {"out of memory on cuda:0", "GiB"});
}
#endif

TEST(CudaErrors, MissingDeviceIsAClearError) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a GPU is present; this checks the error on machines without one";
  expect_error([] { zeros({2}, DType::f32, Device::cuda(0)); }, {"cuda"});
}

}  // namespace
