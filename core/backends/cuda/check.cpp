// The error texts of core/backends/cuda/check.h's macros.
#include "core/backends/cuda/check.h"

#include <stdexcept>
#include <string>

namespace distvae::cuda {

namespace {

std::string where(const char* call, const char* file, int line) {
  return std::string(call) + " (" + file + ":" + std::to_string(line) + ")";
}

}  // namespace

void throw_cuda_error(cudaError_t rc, const char* call, const char* file, int line) {
  throw std::runtime_error("CUDA error " + std::string(cudaGetErrorName(rc)) + ": " +
                           cudaGetErrorString(rc) + " in " + where(call, file, line));
}

void throw_cublas_error(cublasStatus_t rc, const char* call, const char* file, int line) {
  throw std::runtime_error("cuBLAS error " + std::string(cublasLtGetStatusName(rc)) + ": " +
                           cublasLtGetStatusString(rc) + " in " + where(call, file, line));
}

void throw_cudnn_error(cudnnStatus_t rc, const char* call, const char* file, int line) {
  throw std::runtime_error("cuDNN error " + std::string(cudnnGetErrorString(rc)) + " in " +
                           where(call, file, line));
}

}  // namespace distvae::cuda
