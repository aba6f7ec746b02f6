// Multi-tensor AdamW and the global gradient norm on the GPU. The update, per element, in the
// order of kernels/cpu/adamw.h (PyTorch's torch.optim.AdamW):
//   g  = grad * scale                        (scale: gradient clipping, decided on the device)
//   p *= 1 - lr * weight_decay
//   m  = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2
//   p -= (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps);   copy = bf16(p)
// With bf16 moments (optim.state_dtype bf16) m and v are read into f32 and the new values rounded
// to bf16 once, as on the cpu; the parameter update uses this step's unrounded m and v.
//
// Launches: the tensors go in batches of up to kMaxTensors, passed by value as a kernel argument
// (a __grid_constant__ table of pointers, sizes and first blocks, ~2 KB). The gradients are new
// tensors every step, so the table changes every step; as a kernel argument it is copied at
// launch, which needs no staging buffer, no upload and no sync. Each block updates kChunk
// elements of one tensor (found by a short scan of the table's first-block column). mamba-130m
// has ~220 parameters: 7 launches plus one that counts the step.
// Traffic per element: read p, g, m, v (16 B), write p, m, v (12 B) and the bf16 copy (2 B): for
// 130M parameters ~3.9 GB, ~1 ms at 4 TB/s (bf16 moments: 22 B, ~2.9 GB). The kernel is bandwidth bound (~15 FLOPs per
// element).
//
// The gradient norm uses the same batching: each block writes the f32 sum of squares of its chunk
// into its own partial slot, and one block adds all partials in order in f64: deterministic.
#include <algorithm>
#include <type_traits>

#include "core/cuda/common.cuh"
#include "kernels/cuda/adamw.h"

namespace serpent::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxTensors = 36;            // per update launch: keeps the argument table near 2 KB
constexpr int64_t kChunk = kThreads * 16;  // elements per update block
constexpr int kMaxNormTensors = 120;
constexpr int64_t kNormChunk = kThreads * 32;  // elements per norm block

template <class M>
struct UpdateBatch {
  float* p[kMaxTensors];
  const float* g[kMaxTensors];
  M* m[kMaxTensors];
  M* v[kMaxTensors];
  __nv_bfloat16* copy[kMaxTensors];
  int64_t n[kMaxTensors];
  float decay[kMaxTensors];  // 1 - lr * weight_decay, rounded as the CPU rounds it
  int64_t first_block[kMaxTensors + 1];
  int count;
};

struct UpdateScalars {
  double lr, beta1, beta2, eps, max_norm, grad_scale;
};

struct NormBatch {
  const float* g[kMaxNormTensors];
  int64_t n[kMaxNormTensors];
  int64_t first_block[kMaxNormTensors + 1];
  int count;
};

// The tensor whose blocks [first_block[i], first_block[i + 1]) contain `block` (empty tensors own
// no blocks and are passed over).
__device__ __forceinline__ int tensor_of_block(const int64_t* first_block, int count, int64_t block) {
  int i = 0;
  while (i + 1 < count && first_block[i + 1] <= block) ++i;
  return i;
}

__device__ __forceinline__ float to_f32(float x) {
  return x;
}
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
template <class M>
__device__ __forceinline__ M from_f32(float x) {
  if constexpr (std::is_same_v<M, __nv_bfloat16>)
    return __float2bfloat16_rn(x);
  else
    return x;
}

template <class M>
__global__ void __launch_bounds__(kThreads)
    adamw_kernel(const __grid_constant__ UpdateBatch<M> batch, const UpdateScalars s, const float* grad_norm,
                 const int64_t* step) {
  float gs = float(s.grad_scale);
  if (grad_norm) {
    const float norm = *grad_norm;
    if (!isfinite(norm)) return;  // skip the step: nothing is written
    gs = s.max_norm > 0 && double(norm) > s.max_norm ? float(s.max_norm / (double(norm) + 1e-6)) : 1.f;
  }
  // Constants as the CPU computes them: in double, then rounded to float.
  const double t = double(*step + 1);
  const float bias1 = float(1 - pow(s.beta1, t));
  const float bias2_sqrt = float(sqrt(1 - pow(s.beta2, t)));
  const float step_size = float(s.lr) / bias1;
  const float b1 = float(s.beta1), b2 = float(s.beta2), eps = float(s.eps);

  const int i = tensor_of_block(batch.first_block, batch.count, blockIdx.x);
  const int64_t begin = (int64_t(blockIdx.x) - batch.first_block[i]) * kChunk;
  const int64_t end = min(batch.n[i], begin + kChunk);
  float* p = batch.p[i];
  const float* g = batch.g[i];
  M* m = batch.m[i];
  M* v = batch.v[i];
  __nv_bfloat16* copy = batch.copy[i];
  const float decay = batch.decay[i];
  for (int64_t j = begin + threadIdx.x; j < end; j += kThreads) {
    const float gj = g[j] * gs;
    float pj = p[j] * decay;
    const float mj = b1 * to_f32(m[j]) + (1.f - b1) * gj;
    const float vj = b2 * to_f32(v[j]) + (1.f - b2) * gj * gj;
    pj -= step_size * mj / (sqrtf(vj) / bias2_sqrt + eps);
    p[j] = pj;
    m[j] = from_f32<M>(mj);
    v[j] = from_f32<M>(vj);
    if (copy) copy[j] = __float2bfloat16_rn(pj);
  }
}

// After every batch of the step has read the count.
__global__ void count_step_kernel(int64_t* step, const float* grad_norm) {
  if (!grad_norm || isfinite(*grad_norm)) *step += 1;
}

__global__ void __launch_bounds__(kThreads)
    sum_squares_kernel(const __grid_constant__ NormBatch batch, float* partials) {
  __shared__ float scratch[32];
  const int i = tensor_of_block(batch.first_block, batch.count, blockIdx.x);
  const int64_t begin = (int64_t(blockIdx.x) - batch.first_block[i]) * kNormChunk;
  const int64_t end = min(batch.n[i], begin + kNormChunk);
  const float* g = batch.g[i];
  float acc = 0.f;
  for (int64_t j = begin + threadIdx.x; j < end; j += kThreads) acc += g[j] * g[j];
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void __launch_bounds__(1024) norm_kernel(const float* partials, int64_t count, float* out) {
  __shared__ double scratch[32];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < count; i += 1024) acc += double(partials[i]);
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) *out = float(sqrt(acc));
}

int64_t blocks_for(int64_t n, int64_t chunk) {
  return (n + chunk - 1) / chunk;
}

template <class M>
void launch_updates(const std::vector<AdamWTensor>& tensors, const AdamWArgs& a, cudaStream_t s) {
  const UpdateScalars scalars{a.lr, a.beta1, a.beta2, a.eps, a.max_norm, a.grad_scale};
  for (size_t start = 0; start < tensors.size(); start += kMaxTensors) {
    UpdateBatch<M> b{};
    b.count = int(std::min<size_t>(kMaxTensors, tensors.size() - start));
    int64_t blocks = 0;
    for (int k = 0; k < b.count; ++k) {
      const AdamWTensor& t = tensors[start + size_t(k)];
      b.p[k] = t.param;
      b.g[k] = t.grad;
      b.m[k] = static_cast<M*>(t.exp_avg);
      b.v[k] = static_cast<M*>(t.exp_avg_sq);
      b.copy[k] = static_cast<__nv_bfloat16*>(t.bf16_copy);
      b.n[k] = t.n;
      b.decay[k] = float(1 - a.lr * t.weight_decay);
      b.first_block[k] = blocks;
      blocks += blocks_for(t.n, kChunk);
    }
    b.first_block[b.count] = blocks;
    if (blocks == 0) continue;
    SERPENT_CHECK(blocks < (int64_t(1) << 31), "AdamW: ", blocks, " blocks exceed the CUDA grid");
    adamw_kernel<M><<<unsigned(blocks), kThreads, 0, s>>>(b, scalars, a.grad_norm, a.step);
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace

void adamw_update(const std::vector<AdamWTensor>& tensors, const AdamWArgs& a, int device) {
  cudaStream_t s = stream(device);
  if (a.bf16_moments)
    launch_updates<__nv_bfloat16>(tensors, a, s);
  else
    launch_updates<float>(tensors, a, s);
  count_step_kernel<<<1, 1, 0, s>>>(a.step, a.grad_norm);
  CUDA_CHECK_LAUNCH();
}

void grad_norm(const std::vector<const float*>& grads, const std::vector<int64_t>& numels, float* out, int device) {
  SERPENT_CHECK(grads.size() == numels.size(), "grad_norm: ", grads.size(), " gradients but ", numels.size(), " sizes");
  cudaStream_t s = stream(device);
  int64_t total_blocks = 0;
  for (int64_t n : numels) total_blocks += blocks_for(n, kNormChunk);
  auto* partials = static_cast<float*>(CachingAllocator::get().allocate(sizeof(float) * total_blocks, device));
  int64_t offset = 0;
  for (size_t start = 0; start < grads.size(); start += kMaxNormTensors) {
    NormBatch b{};
    b.count = int(std::min<size_t>(kMaxNormTensors, grads.size() - start));
    int64_t blocks = 0;
    for (int k = 0; k < b.count; ++k) {
      b.g[k] = grads[start + size_t(k)];
      b.n[k] = numels[start + size_t(k)];
      b.first_block[k] = blocks;
      blocks += blocks_for(b.n[k], kNormChunk);
    }
    b.first_block[b.count] = blocks;
    if (blocks == 0) continue;
    SERPENT_CHECK(blocks < (int64_t(1) << 31), "grad_norm: ", blocks, " blocks exceed the CUDA grid");
    sum_squares_kernel<<<unsigned(blocks), kThreads, 0, s>>>(b, partials + offset);
    CUDA_CHECK_LAUNCH();
    offset += blocks;
  }
  norm_kernel<<<1, 1024, 0, s>>>(partials, total_blocks, out);
  CUDA_CHECK_LAUNCH();
  CachingAllocator::get().release(partials, device);
}

}  // namespace serpent::cuda
