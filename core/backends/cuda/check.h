// Return-code checks for the CUDA runtime, cuBLAS(Lt) and cuDNN: a failure becomes a
// std::runtime_error naming the call, the library's message and file:line (library code throws;
// only main turns an error into an exit code).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

namespace distvae::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t rc, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t rc, const char* call, const char* file,
                                     int line);
[[noreturn]] void throw_cudnn_error(cudnnStatus_t rc, const char* call, const char* file, int line);

}  // namespace distvae::cuda

#define DISTVAE_CUDA_CHECK(call)                                                               \
  do {                                                                                         \
    const cudaError_t rc_ = (call);                                                            \
    if (rc_ != cudaSuccess) ::distvae::cuda::throw_cuda_error(rc_, #call, __FILE__, __LINE__); \
  } while (0)

#define DISTVAE_CUBLAS_CHECK(call)                                         \
  do {                                                                     \
    const cublasStatus_t rc_ = (call);                                     \
    if (rc_ != CUBLAS_STATUS_SUCCESS)                                      \
      ::distvae::cuda::throw_cublas_error(rc_, #call, __FILE__, __LINE__); \
  } while (0)

#define DISTVAE_CUDNN_CHECK(call)                                         \
  do {                                                                    \
    const cudnnStatus_t rc_ = (call);                                     \
    if (rc_ != CUDNN_STATUS_SUCCESS)                                      \
      ::distvae::cuda::throw_cudnn_error(rc_, #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: a bad configuration is reported by cudaGetLastError, not the launch.
#define DISTVAE_CUDA_CHECK_LAUNCH() DISTVAE_CUDA_CHECK(cudaGetLastError())
