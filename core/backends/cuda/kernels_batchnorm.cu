// Batch normalization over x (B, C, S): the per-channel sums one block per channel with a
// fixed-order block sum in double (so an all-reduce of the buffer gives the global batch's), the
// moments one thread per channel, and the forward and input-gradient passes elementwise.
#include "core/backends/cuda/check.h"
#include "core/backends/cuda/device_math.cuh"
#include "core/backends/cuda/kernels.h"

namespace distvae::cuda {

namespace {

// Channel of element i of (B, C, S).
__device__ inline int channel_of(size_t i, int C, int S) {
  return int((i / size_t(S)) % size_t(C));
}

// Element t = b * S + s of channel c's B * S values.
__device__ inline size_t channel_element(size_t t, int c, int C, int S) {
  const size_t b = t / size_t(S), s = t % size_t(S);
  return (b * size_t(C) + size_t(c)) * size_t(S) + s;
}

// One block per channel c: sums[c] = sum x, sums[C + c] = sum x^2; block 0 writes the count.
__global__ void batchnorm_sums_kernel(const float* x, float* sums, int B, int C, int S) {
  const int c = blockIdx.x;
  const size_t count = size_t(B) * size_t(S);
  double sum = 0.0, sum_sq = 0.0;
  for (size_t t = threadIdx.x; t < count; t += kThreads) {
    const double v = double(x[channel_element(t, c, C, S)]);
    sum += v;
    sum_sq += v * v;
  }
  const double total = block_sum(sum);
  const double total_sq = block_sum(sum_sq);
  if (threadIdx.x == 0) {
    sums[c] = float(total);
    sums[C + c] = float(total_sq);
    if (c == 0) sums[2 * C] = float(count);
  }
}

// One thread per channel, in double. training: mean = s1 / n, var = max(s2 / n - mean^2, 0),
// running = (1 - momentum) running + momentum stat with var * n / (n - 1) for the variance;
// evaluation: the running averages, and sums is not read. invstd = 1 / sqrt(var + eps).
__global__ void batchnorm_moments_kernel(const float* sums, float* running_mean, float* running_var,
                                         float* mean, float* invstd, int C, float eps,
                                         float momentum, bool training) {
  const size_t step = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < size_t(C); i += step) {
    double m, var;
    if (training) {
      const double n = double(sums[2 * C]);
      m = double(sums[i]) / n;
      var = fmax(double(sums[size_t(C) + i]) / n - m * m, 0.0);
      const double unbiased = n > 1.0 ? var * n / (n - 1.0) : var;
      const double mo = double(momentum);
      running_mean[i] = float((1.0 - mo) * double(running_mean[i]) + mo * m);
      running_var[i] = float((1.0 - mo) * double(running_var[i]) + mo * unbiased);
    } else {
      m = double(running_mean[i]);
      var = fmax(double(running_var[i]), 0.0);
    }
    mean[i] = float(m);
    invstd[i] = float(1.0 / sqrt(var + double(eps)));
  }
}

// y = act(gamma (x - mean) invstd + beta), per channel
__global__ void batchnorm_forward_kernel(const float* x, const float* mean, const float* invstd,
                                         const float* gamma, const float* beta, float* y, size_t n,
                                         int C, int S, ActSpec act) {
  const size_t step = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const int c = channel_of(i, C, S);
    y[i] = apply_act(gamma[c] * (x[i] - mean[c]) * invstd[c] + beta[c], act);
  }
}

// One block per channel c: dsums[c] = sum dy, dsums[C + c] = sum dy xhat; block 0 writes the count.
__global__ void batchnorm_backward_sums_kernel(const float* x, const float* dy, const float* mean,
                                               const float* invstd, float* dsums, int B, int C,
                                               int S) {
  const int c = blockIdx.x;
  const float mc = mean[c], ic = invstd[c];
  const size_t count = size_t(B) * size_t(S);
  double sum = 0.0, sum_xhat = 0.0;
  for (size_t t = threadIdx.x; t < count; t += kThreads) {
    const size_t i = channel_element(t, c, C, S);
    const double g = double(dy[i]);
    sum += g;
    sum_xhat += g * double((x[i] - mc) * ic);
  }
  const double total = block_sum(sum);
  const double total_xhat = block_sum(sum_xhat);
  if (threadIdx.x == 0) {
    dsums[c] = float(total);
    dsums[C + c] = float(total_xhat);
    if (c == 0) dsums[2 * C] = float(count);
  }
}

// dx = gamma invstd (dy - (dsums[c] + xhat dsums[C + c]) / n), n = dsums[2C]
__global__ void batchnorm_backward_data_kernel(const float* x, const float* dy, const float* mean,
                                               const float* invstd, const float* gamma,
                                               const float* dsums, float* dx, size_t n, int C,
                                               int S) {
  const float count = dsums[2 * C];
  const size_t step = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const int c = channel_of(i, C, S);
    const float xhat = (x[i] - mean[c]) * invstd[c];
    dx[i] = gamma[c] * invstd[c] * (dy[i] - (dsums[c] + xhat * dsums[C + c]) / count);
  }
}

}  // namespace

void batchnorm_sums(const float* x, float* sums, int B, int C, int S, cudaStream_t s) {
  if (C == 0) return;
  batchnorm_sums_kernel<<<unsigned(C), kThreads, 0, s>>>(x, sums, B, C, S);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void batchnorm_moments(const float* sums, float* running_mean, float* running_var, float* mean,
                       float* invstd, int C, float eps, float momentum, bool training,
                       cudaStream_t s) {
  if (C == 0) return;
  batchnorm_moments_kernel<<<elementwise_blocks(size_t(C)), kThreads, 0, s>>>(
      sums, running_mean, running_var, mean, invstd, C, eps, momentum, training);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void batchnorm_forward(const float* x, const float* mean, const float* invstd, const float* gamma,
                       const float* beta, float* y, int B, int C, int S, ActSpec act,
                       cudaStream_t s) {
  const size_t n = size_t(B) * size_t(C) * size_t(S);
  if (n == 0) return;
  batchnorm_forward_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(x, mean, invstd, gamma, beta,
                                                                      y, n, C, S, act);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void batchnorm_backward_sums(const float* x, const float* dy, const float* mean,
                             const float* invstd, float* dsums, int B, int C, int S,
                             cudaStream_t s) {
  if (C == 0) return;
  batchnorm_backward_sums_kernel<<<unsigned(C), kThreads, 0, s>>>(x, dy, mean, invstd, dsums, B, C,
                                                                  S);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void batchnorm_backward_data(const float* x, const float* dy, const float* mean,
                             const float* invstd, const float* gamma, const float* dsums, float* dx,
                             int B, int C, int S, cudaStream_t s) {
  const size_t n = size_t(B) * size_t(C) * size_t(S);
  if (n == 0) return;
  batchnorm_backward_data_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(
      x, dy, mean, invstd, gamma, dsums, dx, n, C, S);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

}  // namespace distvae::cuda
