// The optimizer updates as single fused kernels over the flat parameter buffer: each element's
// moments and value are read once and written once.
#include "core/backends/cuda/check.h"
#include "core/backends/cuda/device_math.cuh"
#include "core/backends/cuda/kernels.h"

namespace distvae::cuda {

namespace {

// m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= step m / (sqrt(v inv_c2) + eps) + decay p
__global__ void adam_kernel(float* p, const float* g, float* m, float* v, size_t n, AdamScalars a) {
  const size_t step = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const float gi = g[i];
    const float mi = a.b1 * m[i] + (1.0f - a.b1) * gi;
    const float vi = a.b2 * v[i] + (1.0f - a.b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float pi = p[i];
    p[i] = pi - (a.step * mi / (sqrtf(vi * a.inv_c2) + a.eps) + a.decay * pi);
  }
}

// g' = g + wd p;  v = mu v + g';  p -= lr v   (without velocity: p -= lr g')
__global__ void sgd_kernel(float* p, const float* g, float* velocity, size_t n, float lr, float mu,
                           float wd, bool use_velocity) {
  const size_t step = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    float gi = g[i] + wd * p[i];
    if (use_velocity) {
      velocity[i] = mu * velocity[i] + gi;
      gi = velocity[i];
    }
    p[i] -= lr * gi;
  }
}

}  // namespace

void adam_update(float* p, const float* g, float* m, float* v, size_t n, const AdamScalars& a,
                 cudaStream_t s) {
  if (n == 0) return;
  adam_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(p, g, m, v, n, a);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void sgd_update(float* p, const float* g, float* velocity, size_t n, float lr, float momentum,
                float weight_decay, bool use_velocity, cudaStream_t s) {
  if (n == 0) return;
  sgd_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(p, g, velocity, n, lr, momentum,
                                                        weight_decay, use_velocity);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

}  // namespace distvae::cuda
