// Device helpers shared by the kernel files: launch geometry, a deterministic block sum and the
// activations (the reference backend's formulas, in float, so the two agree to rounding).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "core/activation.h"

namespace distvae::cuda {

constexpr int kThreads = 256;  // threads per block everywhere: block_sum's tree assumes it

// Blocks for a grid-stride loop over n elements (elementwise: the order never matters).
inline unsigned elementwise_blocks(size_t n) {
  const size_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

// The sum of v over the block's kThreads threads, in a fixed tree order: the same bits on every
// run. Every thread of the block must call it; every thread gets the sum.
__device__ inline double block_sum(double v) {
  __shared__ double buf[kThreads];
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
    if (static_cast<int>(threadIdx.x) < stride) buf[threadIdx.x] += buf[threadIdx.x + stride];
    __syncthreads();
  }
  const double total = buf[0];
  __syncthreads();  // buf is reused by the next call
  return total;
}

__device__ inline float apply_act(float x, ActSpec a) {
  switch (a.kind) {
    case Act::none:
      return x;
    case Act::relu:
      return x > 0.0f ? x : 0.0f;
    case Act::leaky_relu:
      return x > 0.0f ? x : a.alpha * x;
    case Act::elu:
      return x > 0.0f ? x : a.alpha * expm1f(x);
    case Act::softplus:  // log(1 + e^x), stable for large |x|
      return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
    case Act::tanh:
      return tanhf(x);
    case Act::sigmoid:
      return 1.0f / (1.0f + expf(-x));
  }
  return x;
}

// d act / d x from the output y = act(x), as the reference computes it.
__device__ inline float act_grad_from_output(float y, ActSpec a) {
  switch (a.kind) {
    case Act::none:
      return 1.0f;
    case Act::relu:
      return y > 0.0f ? 1.0f : 0.0f;
    case Act::leaky_relu:
      return y > 0.0f ? 1.0f : a.alpha;
    case Act::elu:
      return y > 0.0f ? 1.0f : y + a.alpha;
    case Act::softplus:
      return -expm1f(-y);
    case Act::tanh:
      return 1.0f - y * y;
    case Act::sigmoid:
      return y * (1.0f - y);
  }
  return 1.0f;
}

}  // namespace distvae::cuda
