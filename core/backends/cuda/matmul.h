// Column-major GEMM through cuBLASLt with an optional bias / ReLU epilogue, planned once per shape
// (descriptors, layouts and the heuristic's algorithm cached) and executed on the caller's
// pointers. FP32 compute (CUBLAS_COMPUTE_32F, no TF32), so results match the CPU backends to
// float rounding.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace distvae::cuda {

class Matmul {
 public:
  explicit Matmul(cudaStream_t stream);
  ~Matmul();
  Matmul(const Matmul&) = delete;
  Matmul& operator=(const Matmul&) = delete;

  // D (m, n; ld ldd) = op(A) op(B) + beta D, column-major; op(A) is (m, k), op(B) is (k, n).
  // A is stored (k, m) when trans_a, else (m, k); B is stored (n, k) when trans_b, else (k, n).
  // epilogue CUBLASLT_EPILOGUE_BIAS / RELU_BIAS read bias (m) from device memory, which must be
  // 16-byte aligned (callers fall back to a separate kernel otherwise).
  void gemm(bool trans_a, bool trans_b, int m, int n, int k, const float* A, int lda,
            const float* B, int ldb, float* D, int ldd, float beta, cublasLtEpilogue_t epilogue,
            const float* bias);

  size_t cached_plans() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Largest power of two (at most 256) dividing the address: what cuBLASLt's alignment
// preferences and the bias epilogue ask about.
inline int pointer_alignment(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  int align = 256;
  while (align > 1 && (a % uintptr_t(align)) != 0) align /= 2;
  return align;
}

}  // namespace distvae::cuda
