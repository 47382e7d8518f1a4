// Elementwise kernels: fill, axpy, scale, activations, bias + activation epilogues, bias
// gradients and the weight axis swap for transposed convolutions.
#include "core/backends/cuda/check.h"
#include "core/backends/cuda/device_math.cuh"
#include "core/backends/cuda/kernels.h"

namespace distvae::cuda {

namespace {

// Grid-stride loop bounds for the calling thread.
struct Stride {
  size_t first, step;
};
__device__ inline Stride grid_stride() {
  return {size_t(blockIdx.x) * blockDim.x + threadIdx.x, size_t(gridDim.x) * blockDim.x};
}

__global__ void fill_kernel(float* x, size_t n, float value) {
  const Stride s = grid_stride();
  for (size_t i = s.first; i < n; i += s.step) x[i] = value;
}

__global__ void axpy_kernel(size_t n, float a, const float* x, float* y) {
  const Stride s = grid_stride();
  for (size_t i = s.first; i < n; i += s.step) y[i] += a * x[i];
}

__global__ void scale_kernel(size_t n, float a, float* x) {
  const Stride s = grid_stride();
  for (size_t i = s.first; i < n; i += s.step) x[i] *= a;
}

__global__ void mul_kernel(size_t n, const float* a, float* x) {
  const Stride s = grid_stride();
  for (size_t i = s.first; i < n; i += s.step) x[i] *= a[i];
}

__global__ void act_forward_kernel(const float* x, float* y, size_t n, ActSpec act) {
  const Stride s = grid_stride();
  for (size_t i = s.first; i < n; i += s.step) y[i] = apply_act(x[i], act);
}

__global__ void act_backward_kernel(const float* y, const float* dy, float* dx, size_t n,
                                    ActSpec act) {
  const Stride s = grid_stride();
  for (size_t i = s.first; i < n; i += s.step) dx[i] = dy[i] * act_grad_from_output(y[i], act);
}

// y: (rows, channels, inner)
__global__ void bias_act_kernel(float* y, const float* b, size_t n, int channels, int inner,
                                ActSpec act) {
  const Stride s = grid_stride();
  for (size_t i = s.first; i < n; i += s.step) {
    const float bias = b ? b[(i / size_t(inner)) % size_t(channels)] : 0.0f;
    y[i] = apply_act(y[i] + bias, act);
  }
}

// One block per channel c: db[c] (+)= sum_{r, i} dy[r, c, i], in double like the reference.
__global__ void bias_grad_kernel(const float* dy, float* db, int rows, int channels, int inner,
                                 bool accumulate) {
  const int c = blockIdx.x;
  const size_t count = size_t(rows) * size_t(inner);
  double acc = 0.0;
  for (size_t t = threadIdx.x; t < count; t += kThreads) {
    const size_t r = t / size_t(inner), i = t % size_t(inner);
    acc += double(dy[(r * size_t(channels) + size_t(c)) * size_t(inner) + i]);
  }
  const double total = block_sum(acc);
  if (threadIdx.x == 0) db[c] = (accumulate ? db[c] : 0.0f) + float(total);
}

// out (c1, c0, kk) = in (c0, c1, kk), indexed by the output element.
__global__ void swap_leading_axes_kernel(const float* in, float* out, int c0, int c1, int kk,
                                         bool accumulate) {
  const size_t n = size_t(c0) * size_t(c1) * size_t(kk);
  const Stride s = grid_stride();
  for (size_t o = s.first; o < n; o += s.step) {
    const size_t k = o % size_t(kk), j = (o / size_t(kk)) % size_t(c0),
                 i = o / (size_t(kk) * size_t(c0));  // out[i, j, k] = in[j, i, k]
    const float v = in[(j * size_t(c1) + i) * size_t(kk) + k];
    out[o] = accumulate ? out[o] + v : v;
  }
}

}  // namespace

void fill(float* x, size_t n, float value, cudaStream_t s) {
  if (n == 0) return;
  fill_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(x, n, value);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void axpy(size_t n, float a, const float* x, float* y, cudaStream_t s) {
  if (n == 0) return;
  axpy_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(n, a, x, y);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void scale(size_t n, float a, float* x, cudaStream_t s) {
  if (n == 0) return;
  scale_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(n, a, x);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void mul(size_t n, const float* a, float* x, cudaStream_t s) {
  if (n == 0) return;
  mul_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(n, a, x);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void act_forward(const float* x, float* y, size_t n, ActSpec act, cudaStream_t s) {
  if (n == 0) return;
  act_forward_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(x, y, n, act);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void act_backward(const float* y, const float* dy, float* dx, size_t n, ActSpec act,
                  cudaStream_t s) {
  if (n == 0) return;
  act_backward_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(y, dy, dx, n, act);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void bias_act(float* y, const float* b, int rows, int channels, int inner, ActSpec act,
              cudaStream_t s) {
  const size_t n = size_t(rows) * size_t(channels) * size_t(inner);
  if (n == 0 || (!b && act.kind == Act::none)) return;
  bias_act_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(y, b, n, channels, inner, act);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void bias_grad(const float* dy, float* db, int rows, int channels, int inner, bool accumulate,
               cudaStream_t s) {
  if (channels == 0) return;
  bias_grad_kernel<<<unsigned(channels), kThreads, 0, s>>>(dy, db, rows, channels, inner,
                                                           accumulate);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void swap_leading_axes(const float* in, float* out, int c0, int c1, int kk, bool accumulate,
                       cudaStream_t s) {
  const size_t n = size_t(c0) * size_t(c1) * size_t(kk);
  if (n == 0) return;
  swap_leading_axes_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(in, out, c0, c1, kk,
                                                                      accumulate);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

}  // namespace distvae::cuda
