// Row-major matrix products through cuBLAS. cuBLAS is column-major, and a row-major (M, N)
// matrix is the column-major (N, M) matrix of the same bytes, so C = op(A) op(B) is computed as
// C^T = op(B)^T op(A)^T with the operands swapped: no copies, only flags and leading dimensions.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/matmul.h"

namespace serpent::cuda {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const void* A, const void* B, void* C,
          DType dt, bool accumulate, int device) {
  if (M == 0 || N == 0) return;
  cublasHandle_t h = cublas(device);
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // first cuBLAS operand: our B
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int64_t ldb = trans_b ? K : N, lda = trans_a ? M : K, ldc = N;
  cudaDataType_t type;
  cublasComputeType_t compute;
  switch (dt) {
    case DType::f32: type = CUDA_R_32F, compute = CUBLAS_COMPUTE_32F_PEDANTIC; break;
    case DType::bf16: type = CUDA_R_16BF, compute = CUBLAS_COMPUTE_32F; break;
    case DType::f64: type = CUDA_R_64F, compute = CUBLAS_COMPUTE_64F; break;
    default: fail("matmul: expected f32, f64 or bf16 on the GPU, got ", dtype_name(dt));
  }
  const double alpha64 = 1.0, beta64 = accumulate ? 1.0 : 0.0;
  const float alpha32 = 1.0f, beta32 = accumulate ? 1.0f : 0.0f;
  const void* alpha = dt == DType::f64 ? static_cast<const void*>(&alpha64) : static_cast<const void*>(&alpha32);
  const void* beta = dt == DType::f64 ? static_cast<const void*>(&beta64) : static_cast<const void*>(&beta32);
  CUBLAS_CHECK(cublasGemmEx(h, op_b, op_a, int(N), int(M), int(K), alpha, B, type, int(ldb), A, type, int(lda), beta,
                            C, type, int(ldc), compute, CUBLAS_GEMM_DEFAULT));
}

}  // namespace serpent::cuda
