// Device discovery and page-locked host memory. A machine without an NVIDIA driver is an expected
// state (CI, CPU nodes), not an error: it reports zero devices and says why.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <new>
#include <string>

#include "core/backends/cuda/entry.h"

namespace distvae::cuda {

int device_count(std::string* why) {
  int n = 0;
  const cudaError_t rc = cudaGetDeviceCount(&n);
  if (rc == cudaSuccess && n > 0) return n;
  cudaGetLastError();  // leave no error behind for the next runtime call to report
  if (why) {
    if (rc == cudaSuccess || rc == cudaErrorNoDevice)
      *why = "no CUDA device on this node";
    else if (rc == cudaErrorInsufficientDriver)
      *why = "no NVIDIA driver on this node (cudaGetDeviceCount: " +
             std::string(cudaGetErrorString(rc)) + ")";
    else
      *why = "cudaGetDeviceCount: " + std::string(cudaGetErrorString(rc));
  }
  return 0;
}

float* pinned_alloc(size_t floats) {
  void* p = nullptr;
  if (floats == 0) return nullptr;
  if (cudaHostAlloc(&p, floats * sizeof(float), cudaHostAllocDefault) != cudaSuccess) {
    cudaGetLastError();
    throw std::bad_alloc();
  }
  return static_cast<float*>(p);
}

void pinned_free(float* p) {
  if (!p) return;
  // Called from destructors: report, never throw.
  if (const cudaError_t rc = cudaFreeHost(p); rc != cudaSuccess)
    std::fprintf(stderr, "distvae: warning: cudaFreeHost failed: %s\n", cudaGetErrorString(rc));
}

}  // namespace distvae::cuda
