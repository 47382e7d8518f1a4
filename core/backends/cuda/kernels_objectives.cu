// The objective terms: reparameterization, likelihoods, KL and log densities. Per-image sums run
// one block per image (row) with a fixed-order block sum in double, as the reference accumulates;
// the per-dimension KL runs one thread per dimension over the images in order.
#include "core/backends/cuda/check.h"
#include "core/backends/cuda/device_math.cuh"
#include "core/backends/cuda/kernels.h"

namespace distvae::cuda {

namespace {

constexpr double kLog2Pi = 1.8378770664093454835606594728112;

__global__ void reparameterize_kernel(const float* mu, const float* logvar, const float* eps,
                                      float* z, size_t n) {
  const size_t step = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step)
    z[i] = mu[i] + expf(0.5f * logvar[i]) * eps[i];
}

__global__ void reparameterize_backward_kernel(const float* dz, const float* logvar,
                                               const float* eps, float* dmu, float* dlogvar,
                                               size_t n) {
  const size_t step = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    dmu[i] += dz[i];
    dlogvar[i] += dz[i] * eps[i] * 0.5f * expf(0.5f * logvar[i]);
  }
}

// Row b of x (B, D): the threads of block b take d = t, t + kThreads, ...
__global__ void bernoulli_kernel(const float* logits, const float* x, float* ll, float* dlogits,
                                 float scale, int D) {
  const size_t row = size_t(blockIdx.x) * size_t(D);
  double acc = 0.0;
  for (int d = threadIdx.x; d < D; d += kThreads) {
    const size_t i = row + size_t(d);
    const float l = logits[i];
    const float e = expf(-fabsf(l));  // one exp serves softplus and sigmoid
    acc += double(x[i]) * double(l) - double(fmaxf(l, 0.0f) + log1pf(e));
    if (dlogits) dlogits[i] = scale * (x[i] - (l >= 0.0f ? 1.0f : e) / (1.0f + e));
  }
  const double total = block_sum(acc);
  if (threadIdx.x == 0) ll[blockIdx.x] = float(total);
}

__global__ void gaussian_kernel(const float* mean, const float* logvar, float fixed_logvar,
                                float floor, const float* x, float* ll, float* dmean,
                                float* dlogvar, float scale, int D) {
  const size_t row = size_t(blockIdx.x) * size_t(D);
  double acc = 0.0;
  for (int d = threadIdx.x; d < D; d += kThreads) {
    const size_t i = row + size_t(d);
    const bool floored = logvar && logvar[i] < floor;
    const float v = logvar ? (floored ? floor : logvar[i]) : fixed_logvar;
    const float r = x[i] - mean[i];
    const float inv = expf(-v);
    acc += -0.5 * (kLog2Pi + double(v) + double(r) * double(r) * double(inv));
    if (dmean) dmean[i] = scale * r * inv;
    if (dlogvar) dlogvar[i] = floored ? 0.0f : scale * 0.5f * (r * r * inv - 1.0f);
  }
  const double total = block_sum(acc);
  if (threadIdx.x == 0) ll[blockIdx.x] = float(total);
}

__device__ inline float kl_term(float mu, float lv) {
  return 0.5f * (mu * mu + expf(lv) - lv - 1.0f);
}

__global__ void kl_rows_kernel(const float* mu, const float* logvar, float* kl, int D) {
  const size_t row = size_t(blockIdx.x) * size_t(D);
  double acc = 0.0;
  for (int d = threadIdx.x; d < D; d += kThreads)
    acc += double(kl_term(mu[row + size_t(d)], logvar[row + size_t(d)]));
  const double total = block_sum(acc);
  if (threadIdx.x == 0) kl[blockIdx.x] = float(total);
}

// kl_dim[d] = sum over images b in order, in float as the reference accumulates it.
__global__ void kl_dims_kernel(const float* mu, const float* logvar, float* kl_dim, int B, int D) {
  const int d = int(blockIdx.x) * kThreads + int(threadIdx.x);
  if (d >= D) return;
  float acc = 0.0f;
  for (int b = 0; b < B; ++b) {
    const size_t i = size_t(b) * size_t(D) + size_t(d);
    acc += kl_term(mu[i], logvar[i]);
  }
  kl_dim[d] = acc;
}

__global__ void kl_backward_kernel(const float* mu, const float* logvar, const float* dim_weight,
                                   float scale, float* dmu, float* dlogvar, size_t n, int D) {
  const size_t step = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const float s = dim_weight ? scale * dim_weight[i % size_t(D)] : scale;
    dmu[i] += s * mu[i];
    dlogvar[i] += s * 0.5f * expm1f(logvar[i]);
  }
}

__global__ void std_normal_kernel(const float* z, float* lp, float* dz, float scale, int D) {
  const size_t row = size_t(blockIdx.x) * size_t(D);
  double acc = 0.0;
  for (int d = threadIdx.x; d < D; d += kThreads) {
    const size_t i = row + size_t(d);
    acc += -0.5 * (kLog2Pi + double(z[i]) * double(z[i]));
    if (dz) dz[i] += -scale * z[i];
  }
  const double total = block_sum(acc);
  if (threadIdx.x == 0) lp[blockIdx.x] = float(total);
}

__global__ void normal_kernel(const float* z, const float* mu, const float* logvar, float* lq,
                              int D) {
  const size_t row = size_t(blockIdx.x) * size_t(D);
  double acc = 0.0;
  for (int d = threadIdx.x; d < D; d += kThreads) {
    const size_t i = row + size_t(d);
    const double r = double(z[i]) - double(mu[i]);
    acc += -0.5 * (kLog2Pi + double(logvar[i]) + r * r * exp(-double(logvar[i])));
  }
  const double total = block_sum(acc);
  if (threadIdx.x == 0) lq[blockIdx.x] = float(total);
}

}  // namespace

void reparameterize(const float* mu, const float* logvar, const float* eps, float* z, size_t n,
                    cudaStream_t s) {
  if (n == 0) return;
  reparameterize_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(mu, logvar, eps, z, n);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void reparameterize_backward(const float* dz, const float* logvar, const float* eps, float* dmu,
                             float* dlogvar, size_t n, cudaStream_t s) {
  if (n == 0) return;
  reparameterize_backward_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(dz, logvar, eps, dmu,
                                                                            dlogvar, n);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void bernoulli_log_lik(const float* logits, const float* x, float* ll, float* dlogits, float scale,
                       int B, int D, cudaStream_t s) {
  if (B <= 0) return;
  bernoulli_kernel<<<unsigned(B), kThreads, 0, s>>>(logits, x, ll, dlogits, scale, D);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void gaussian_log_lik(const float* mean, const float* logvar, float fixed_logvar,
                      float logvar_floor, const float* x, float* ll, float* dmean, float* dlogvar,
                      float scale, int B, int D, cudaStream_t s) {
  if (B <= 0) return;
  gaussian_kernel<<<unsigned(B), kThreads, 0, s>>>(mean, logvar, fixed_logvar, logvar_floor, x, ll,
                                                   dmean, dlogvar, scale, D);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void kl_std_normal(const float* mu, const float* logvar, float* kl, float* kl_dim, int B, int D,
                   cudaStream_t s) {
  if (B > 0) {
    kl_rows_kernel<<<unsigned(B), kThreads, 0, s>>>(mu, logvar, kl, D);
    DISTVAE_CUDA_CHECK_LAUNCH();
  }
  if (kl_dim && D > 0) {
    kl_dims_kernel<<<unsigned((D + kThreads - 1) / kThreads), kThreads, 0, s>>>(mu, logvar, kl_dim,
                                                                                B, D);
    DISTVAE_CUDA_CHECK_LAUNCH();
  }
}

void kl_std_normal_backward(const float* mu, const float* logvar, const float* dim_weight,
                            float scale, float* dmu, float* dlogvar, int B, int D, cudaStream_t s) {
  const size_t n = size_t(B) * size_t(D);
  if (n == 0) return;
  kl_backward_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(mu, logvar, dim_weight, scale, dmu,
                                                                dlogvar, n, D);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void std_normal_log_density(const float* z, float* lp, float* dz, float scale, int B, int D,
                            cudaStream_t s) {
  if (B <= 0) return;
  std_normal_kernel<<<unsigned(B), kThreads, 0, s>>>(z, lp, dz, scale, D);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void normal_log_density(const float* z, const float* mu, const float* logvar, float* lq, int B,
                        int D, cudaStream_t s) {
  if (B <= 0) return;
  normal_kernel<<<unsigned(B), kThreads, 0, s>>>(z, mu, logvar, lq, D);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

}  // namespace distvae::cuda
