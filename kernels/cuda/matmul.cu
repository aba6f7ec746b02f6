// Row-major matrix products through cuBLAS. cuBLAS is column-major, and a row-major (M, N)
// matrix is the column-major (N, M) matrix of the same bytes, so C = op(A) op(B) is computed as
// C^T = op(B)^T op(A)^T with the operands swapped: no copies, only flags and leading dimensions.
#include "core/cuda/common.cuh"
#include "kernels/cuda/matmul.h"

namespace serpent::cuda {

namespace {
cudaDataType_t cuda_type(DType dt) {
  switch (dt) {
    case DType::f32:
      return CUDA_R_32F;
    case DType::bf16:
      return CUDA_R_16BF;
    case DType::f64:
      return CUDA_R_64F;
    default:
      fail("matmul: expected f32, f64 or bf16 on the GPU, got ", dtype_name(dt));
  }
}
}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const void* A, const void* B, void* C, DType dt,
          DType c_dt, bool accumulate, int device) {
  if (M == 0 || N == 0) return;
  cublasHandle_t h = cublas(device);
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // first cuBLAS operand: our B
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int64_t ldb = trans_b ? K : N, lda = trans_a ? M : K, ldc = N;
  SERPENT_CHECK(c_dt == dt || (dt == DType::bf16 && c_dt == DType::f32), "matmul: cannot write a product of ",
                dtype_name(dt), " operands as ", dtype_name(c_dt));
  const cudaDataType_t type = cuda_type(dt), c_type = cuda_type(c_dt);
  // f32 stays true fp32 (no TF32) so that it matches the CPU to float precision.
  const cublasComputeType_t compute = dt == DType::f64   ? CUBLAS_COMPUTE_64F
                                      : dt == DType::f32 ? CUBLAS_COMPUTE_32F_PEDANTIC
                                                         : CUBLAS_COMPUTE_32F;
  const double alpha64 = 1.0, beta64 = accumulate ? 1.0 : 0.0;
  const float alpha32 = 1.0f, beta32 = accumulate ? 1.0f : 0.0f;
  const void* alpha = dt == DType::f64 ? static_cast<const void*>(&alpha64) : static_cast<const void*>(&alpha32);
  const void* beta = dt == DType::f64 ? static_cast<const void*>(&beta64) : static_cast<const void*>(&beta32);
  CUBLAS_CHECK(cublasGemmEx(h, op_b, op_a, int(N), int(M), int(K), alpha, B, type, int(ldb), A, type, int(lda), beta, C,
                            c_type, int(ldc), compute, CUBLAS_GEMM_DEFAULT));
}

}  // namespace serpent::cuda
