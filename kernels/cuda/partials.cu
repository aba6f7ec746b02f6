// Column sums of a (parts, stride) matrix of partials in a fixed order. A block covers 32
// columns with 8 rows of threads: thread row r adds parts r, r + 8, r + 16, ... in order, then
// the 8 sums are added in order by the first row. Loads are coalesced along the columns, and each
// thread has only parts / 8 dependent adds, which keeps a few hundred partials cheap.
#include "core/cuda/common.cuh"
#include "kernels/cuda/partials.h"

namespace serpent::cuda {

namespace {

constexpr int kCols = 32, kLanes = 8;

__global__ void sum_partials_kernel(const float* partials, int64_t parts, int64_t stride, int64_t cols, float* out) {
  __shared__ float lane_sum[kLanes][kCols];
  const int64_t c = int64_t(blockIdx.x) * kCols + threadIdx.x;
  float acc = 0;
  if (c < cols)
    for (int64_t p = threadIdx.y; p < parts; p += kLanes) acc += partials[p * stride + c];
  lane_sum[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float total = 0;
    for (int r = 0; r < kLanes; ++r) total += lane_sum[r][threadIdx.x];
    out[c] = total;
  }
}

}  // namespace

void sum_partials(const float* partials, int64_t parts, int64_t stride, int64_t cols, float* out, int device) {
  if (cols == 0) return;
  const unsigned blocks = unsigned((cols + kCols - 1) / kCols);
  sum_partials_kernel<<<blocks, dim3(kCols, kLanes), 0, stream(device)>>>(partials, parts, stride, cols, out);
  CUDA_CHECK_LAUNCH();
}

}  // namespace serpent::cuda
