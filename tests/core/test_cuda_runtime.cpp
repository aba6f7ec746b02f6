// The CUDA runtime (core/cuda/runtime.h): the caching allocator's steady state, out-of-memory
// and a missing device as clear errors.
#include "tests/helpers.h"
#ifdef SERPENT_CUDA
#include "core/cuda/runtime.h"
#endif

using namespace serpent;
using namespace serpent::testing;

namespace {

#ifdef SERPENT_CUDA
class CudaRuntime : public CudaTest {};

TEST_F(CudaRuntime, CachingAllocatorReachesASteadyState) {
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

TEST_F(CudaRuntime, OutOfMemoryIsAClearError) {
  expect_error([&] { Tensor::empty({int64_t(1) << 40}, DType::f32, gpu_); }, {"out of memory on cuda:0", "GiB"});
}
#endif

TEST(CudaErrors, MissingDeviceIsAClearError) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a GPU is present; this checks the error on machines without one";
  expect_error([] { zeros({2}, DType::f32, Device::cuda(0)); }, {"cuda"});
}

}  // namespace
