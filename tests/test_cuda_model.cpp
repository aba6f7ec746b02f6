// The whole model on a GPU against the CPU: the loss and every parameter's gradient, in f32
// (where they must agree to float precision) and in bf16 mixed precision (where they must agree
// to bf16 precision), plus a training step that allocates nothing new once warm.
#include <random>

#include "helpers.h"
#include "layers/mamba.h"
#include "optim/adamw.h"
#ifdef SERPENT_CUDA
#include "core/cuda/runtime.h"
#endif

using namespace serpent;
using namespace serpent::testing;

namespace {

class CudaModel : public CudaTest {};

MambaConfig small_config() {
  MambaConfig c;
  c.d_model = 40;  // d_inner 80: not a multiple of the scan's 32-channel blocks
  c.n_layer = 2;
  c.vocab_size = 97;
  return c;
}

Tensor random_ids(int64_t B, int64_t L, int64_t vocab, Generator& gen) {
  std::vector<int64_t> v(size_t(B * L));
  for (auto& t : v) t = std::min<int64_t>(vocab - 1, int64_t(gen.uniform() * double(vocab)));
  return from_vector(v, {B, L});
}

// Loss and gradients of the same model (same seed) on the cpu and on cuda:0 in compute dtype dt.
void expect_model_parity(uint64_t seed, DType dt, double loss_tol, double grad_tol) {
  Generator g_cpu(seed), g_gpu(seed), g_data(seed + 7);
  MambaLM cpu(small_config(), g_cpu), gpu(small_config(), g_gpu);
  gpu.to(Device::cuda(0));
  gpu.set_compute_dtype(dt);
  // Random norm weights and D so that every parameter's gradient is exercised away from its init.
  for (auto* m : {&cpu, &gpu}) {
    Generator g(seed + 3);
    for (auto& [name, t] : m->named_parameters())
      if (t.dim() == 1) t.copy_(uniform(t.shape(), 0.5, 1.5, g, DType::f32));
  }
  Tensor ids = random_ids(3, 37, 97, g_data), targets = random_ids(3, 37, 97, g_data);
  Tensor lc = cpu.loss(ids, targets);
  Tensor lg = gpu.loss(ids.to(Device::cuda(0)), targets.to(Device::cuda(0)));
  autograd::backward(lc);
  autograd::backward(lg);
  EXPECT_LE(std::abs(lg.item() - lc.item()) / std::abs(lc.item()), loss_tol) << "loss " << dtype_name(dt);
  auto pc = cpu.named_parameters(), pg = gpu.named_parameters();
  for (size_t i = 0; i < pc.size(); ++i) {
    ASSERT_TRUE(pg[i].second.grad().defined()) << pg[i].first;
    EXPECT_LE(relative_error(pg[i].second.grad(), pc[i].second.grad()), grad_tol)
        << "gradient of " << pc[i].first << " (" << dtype_name(dt) << ")";
  }
}

TEST_F(CudaModel, F32LossAndEveryGradientMatchTheCpu) {
  expect_model_parity(seed_, DType::f32, 1e-5, 1e-4);
}

// bf16 rounds every activation and matmul operand (relative 2^-9 each); through two layers of
// forward and backward the gradients of the first layer's small tensors drift by up to ~9%
// (measured on an H200, 2026-11-30), so this is a sanity bound, not a precision claim: the f32
// test above is the exact one.
TEST_F(CudaModel, Bf16MixedPrecisionStaysCloseToTheCpu) {
  expect_model_parity(seed_, DType::bf16, 1e-2, 0.15);
}

#ifdef SERPENT_CUDA
TEST_F(CudaModel, TrainingStepAllocatesNothingOnceWarm) {
  Generator gen(seed_);
  MambaLM model(small_config(), gen);
  model.to(Device::cuda(0));
  model.set_compute_dtype(DType::bf16);
  AdamW opt(model.named_parameters(), AdamWConfig{});
  const std::vector<Tensor> params = model.parameters();
  Tensor ids = random_ids(4, 64, 97, gen).to(Device::cuda(0)), targets = random_ids(4, 64, 97, gen).to(Device::cuda(0));
  auto step = [&] {
    model.zero_grad();
    Tensor loss = model.loss(ids, targets);
    autograd::backward(loss);
    opt.step(1e-3, grad_norm_device(params), 1.0);
  };
  step();
  step();
  const int64_t mallocs = cuda::CachingAllocator::get().stats(0).device_mallocs;
  for (int i = 0; i < 3; ++i) step();
  cuda::synchronize(0);
  EXPECT_EQ(cuda::CachingAllocator::get().stats(0).device_mallocs, mallocs);
}
#endif

}  // namespace
