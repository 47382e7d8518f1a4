// Whole-buffer reductions: the sum of squares (gradient norms) in two deterministic passes, and
// the non-finite check.
#include <cmath>

#include "core/backends/cuda/check.h"
#include "core/backends/cuda/device_math.cuh"
#include "core/backends/cuda/kernels.h"

namespace distvae::cuda {

namespace {

constexpr int kMaxReduceBlocks = 1024;  // the second pass is one block of kThreads

// Pass 1: block b sums x^2 over the elements i = b * kThreads + t + k * (blocks * kThreads).
__global__ void sum_squares_partials(const float* x, size_t n, double* partials) {
  const size_t step = size_t(gridDim.x) * kThreads;
  double acc = 0.0;
  for (size_t i = size_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += step)
    acc += double(x[i]) * double(x[i]);
  const double total = block_sum(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// Pass 2: one block sums the partials in a fixed order.
__global__ void sum_partials(const double* partials, int count, double* result) {
  double acc = 0.0;
  for (int i = threadIdx.x; i < count; i += kThreads) acc += partials[i];
  const double total = block_sum(acc);
  if (threadIdx.x == 0) *result = total;
}

// Any thread that sees a non-finite value stores 1: every writer writes the same value, so the
// outcome does not depend on their order.
__global__ void nonfinite_kernel(const float* x, size_t n, int* flag) {
  const size_t step = size_t(gridDim.x) * kThreads;
  for (size_t i = size_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += step)
    if (!isfinite(x[i])) {
      *flag = 1;
      return;
    }
}

}  // namespace

int reduce_blocks(size_t n) {
  const size_t blocks = (n + kThreads - 1) / kThreads;
  return int(blocks < 1 ? 1 : (blocks > kMaxReduceBlocks ? kMaxReduceBlocks : blocks));
}

void sum_squares(const float* x, size_t n, double* partials, double* result, cudaStream_t s) {
  const int blocks = reduce_blocks(n);
  sum_squares_partials<<<unsigned(blocks), kThreads, 0, s>>>(x, n, partials);
  DISTVAE_CUDA_CHECK_LAUNCH();
  sum_partials<<<1, kThreads, 0, s>>>(partials, blocks, result);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void any_nonfinite(const float* x, size_t n, int* flag, cudaStream_t s) {
  DISTVAE_CUDA_CHECK(cudaMemsetAsync(flag, 0, sizeof(int), s));
  if (n == 0) return;
  nonfinite_kernel<<<unsigned(reduce_blocks(n)), kThreads, 0, s>>>(x, n, flag);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

}  // namespace distvae::cuda
