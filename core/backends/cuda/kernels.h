// Host-callable launchers of distvae's own CUDA kernels (elementwise, reductions, batch
// normalization, objective terms, optimizer updates). Plain C++ signatures, so host files call them
// without nvcc. Every launcher enqueues on `s` and returns at once; pointers are device memory.
//
// Determinism: no kernel here accumulates with atomics. Sums run in a fixed order per thread and
// a fixed shared-memory tree per block, over a grid whose size depends only on the problem size,
// so the same inputs give the same bits on every run and every device of one architecture.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "core/activation.h"

namespace distvae::cuda {

// ---- elementwise (kernels_elementwise.cu) ----
void fill(float* x, size_t n, float value, cudaStream_t s);
void axpy(size_t n, float a, const float* x, float* y, cudaStream_t s);  // y += a x
void scale(size_t n, float a, float* x, cudaStream_t s);                 // x *= a
void mul(size_t n, const float* a, float* x, cudaStream_t s);            // x *= a, elementwise
void act_forward(const float* x, float* y, size_t n, ActSpec act, cudaStream_t s);  // x == y ok
// dx = dy * act'(x) from the forward output y; dy == dx ok.
void act_backward(const float* y, const float* dy, float* dx, size_t n, ActSpec act,
                  cudaStream_t s);
// y (rows, channels, inner) = act(y + b[channel]) in place; b may be null.
// linear: (B, Out, 1); conv/deconv: (B, Cout, Ho * Wo).
void bias_act(float* y, const float* b, int rows, int channels, int inner, ActSpec act,
              cudaStream_t s);
// db[c] = sum over rows and inner of dy (rows, channels, inner), added to db[c] when accumulate;
// one block per channel.
void bias_grad(const float* dy, float* db, int rows, int channels, int inner, bool accumulate,
               cudaStream_t s);
// out (c1, c0, kk) = in (c0, c1, kk) with the first two axes swapped; out += ... when accumulate.
// Turns (Cout, Cin, K, K) deconv weights into the (Cin, Cout, K, K) filter cuDNN's transposed
// convolution reads, and its filter gradient back.
void swap_leading_axes(const float* in, float* out, int c0, int c1, int kk, bool accumulate,
                       cudaStream_t s);

// ---- reductions (kernels_reduce.cu) ----
// Blocks of the first pass for n values: a function of n alone, so the summation order is too.
int reduce_blocks(size_t n);
// *result = sum x^2 in double; partials holds reduce_blocks(n) doubles.
void sum_squares(const float* x, size_t n, double* partials, double* result, cudaStream_t s);
// *flag = 1 when some value is NaN or infinite, else 0.
void any_nonfinite(const float* x, size_t n, int* flag, cudaStream_t s);

// ---- batch normalization over x (B, C, S) (kernels_batchnorm.cu); Backend's formulas ----
// sums (2C + 1) = [sum x, sum x^2, B * S]; one block per channel.
void batchnorm_sums(const float* x, float* sums, int B, int C, int S, cudaStream_t s);
// mean, invstd (C) from sums (training; running averages updated) or from the running averages
// (evaluation; sums not read); one thread per channel.
void batchnorm_moments(const float* sums, float* running_mean, float* running_var, float* mean,
                       float* invstd, int C, float eps, float momentum, bool training,
                       cudaStream_t s);
// y = act(gamma (x - mean) invstd + beta)
void batchnorm_forward(const float* x, const float* mean, const float* invstd, const float* gamma,
                       const float* beta, float* y, int B, int C, int S, ActSpec act,
                       cudaStream_t s);
// dsums (2C + 1) = [sum dy, sum dy xhat, B * S]; one block per channel.
void batchnorm_backward_sums(const float* x, const float* dy, const float* mean,
                             const float* invstd, float* dsums, int B, int C, int S,
                             cudaStream_t s);
// dx = gamma invstd (dy - (dsums[:C] + xhat dsums[C:2C]) / dsums[2C])
void batchnorm_backward_data(const float* x, const float* dy, const float* mean,
                             const float* invstd, const float* gamma, const float* dsums, float* dx,
                             int B, int C, int S, cudaStream_t s);

// ---- objective terms (kernels_objectives.cu); B images of D values, one block per image ----
void reparameterize(const float* mu, const float* logvar, const float* eps, float* z, size_t n,
                    cudaStream_t s);
void reparameterize_backward(const float* dz, const float* logvar, const float* eps, float* dmu,
                             float* dlogvar, size_t n, cudaStream_t s);
void bernoulli_log_lik(const float* logits, const float* x, float* ll, float* dlogits, float scale,
                       int B, int D, cudaStream_t s);
void gaussian_log_lik(const float* mean, const float* logvar, float fixed_logvar,
                      float logvar_floor, const float* x, float* ll, float* dmean, float* dlogvar,
                      float scale, int B, int D, cudaStream_t s);
void kl_std_normal(const float* mu, const float* logvar, float* kl, float* kl_dim, int B, int D,
                   cudaStream_t s);
void kl_std_normal_backward(const float* mu, const float* logvar, const float* dim_weight,
                            float scale, float* dmu, float* dlogvar, int B, int D, cudaStream_t s);
void std_normal_log_density(const float* z, float* lp, float* dz, float scale, int B, int D,
                            cudaStream_t s);
void normal_log_density(const float* z, const float* mu, const float* logvar, float* lq, int B,
                        int D, cudaStream_t s);

// ---- optimizer updates over a flat span (kernels_optim.cu) ----
// The scalars are the reference backend's, computed once on the host in double and rounded to
// float the same way: step = lr / (1 - b1^t), inv_c2 = 1 / (1 - b2^t), decay = lr * wd.
struct AdamScalars {
  float b1, b2, step, inv_c2, eps, decay;
};
void adam_update(float* p, const float* g, float* m, float* v, size_t n, const AdamScalars& a,
                 cudaStream_t s);
void sgd_update(float* p, const float* g, float* velocity, size_t n, float lr, float momentum,
                float weight_decay, bool use_velocity, cudaStream_t s);

}  // namespace distvae::cuda
