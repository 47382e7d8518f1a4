// The CUDA backend's primitives: memory, cuBLASLt linear layers, cuDNN convolutions with a fused
// bias + activation kernel after them, and the own kernels for the rest.
#include "core/backends/cuda/backend_cuda.h"

#include <cuda_runtime.h>  // the typed cudaMalloc / cudaMallocHost overloads

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "core/backends/cuda/check.h"
#include "core/backends/cuda/entry.h"
#include "core/backends/cuda/kernels.h"

namespace distvae::cuda {

namespace {

// The current device of the calling thread, after checking there is one.
int usable_device() {
  std::string why;
  if (device_count(&why) == 0)
    throw std::runtime_error("backend 'cuda': no CUDA device: " + why +
                             " (use backend: dnnl on machines without a GPU)");
  int device = 0;
  DISTVAE_CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

size_t bytes(size_t n) {
  return n * sizeof(float);
}

// How a linear layer's bias and activation are applied: inside cuBLASLt's epilogue where it has
// one (bias, ReLU), else by the bias_act kernel after the GEMM.
struct LinearEpilogue {
  cublasLtEpilogue_t epilogue;
  const float* kernel_bias;  // bias for bias_act (null when the epilogue added it)
  ActSpec kernel_act;        // activation for bias_act
};

LinearEpilogue linear_epilogue(const float* b, ActSpec act) {
  const bool bias_fits = b && pointer_alignment(b) >= 16;  // the epilogue's alignment need
  const bool relu = act.kind == Act::relu;
  if (!b)
    return relu ? LinearEpilogue{CUBLASLT_EPILOGUE_RELU, nullptr, {}}
                : LinearEpilogue{CUBLASLT_EPILOGUE_DEFAULT, nullptr, act};
  if (!bias_fits) return {CUBLASLT_EPILOGUE_DEFAULT, b, act};
  return relu ? LinearEpilogue{CUBLASLT_EPILOGUE_RELU_BIAS, nullptr, {}}
              : LinearEpilogue{CUBLASLT_EPILOGUE_BIAS, nullptr, act};
}

}  // namespace

CudaBackend::CudaBackend() : device_(usable_device()), matmul_(stream_), conv_(stream_) {
  DISTVAE_CUDA_CHECK(cudaMalloc(&partials_, sizeof(double) * size_t(reduce_blocks(SIZE_MAX))));
  DISTVAE_CUDA_CHECK(cudaMalloc(&result_, sizeof(double)));
  DISTVAE_CUDA_CHECK(cudaMalloc(&flag_, sizeof(int)));
  DISTVAE_CUDA_CHECK(cudaMallocHost(&host_result_, sizeof(double)));
  DISTVAE_CUDA_CHECK(cudaMallocHost(&host_flag_, sizeof(int)));
  DISTVAE_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
  DISTVAE_CUDA_CHECK(cudaEventCreateWithFlags(&compute_mark_, cudaEventDisableTiming));
  DISTVAE_CUDA_CHECK(cudaEventCreateWithFlags(&upload_done_, cudaEventDisableTiming));
}

CudaBackend::~CudaBackend() {
  cudaStreamSynchronize(stream_);  // destructors do not throw: errors here only leak
  if (copy_stream_) cudaStreamSynchronize(copy_stream_);
  if (upload_done_) cudaEventDestroy(upload_done_);
  if (compute_mark_) cudaEventDestroy(compute_mark_);
  if (copy_stream_) cudaStreamDestroy(copy_stream_);
  cudaFreeHost(host_flag_);
  cudaFreeHost(host_result_);
  cudaFree(flag_);
  cudaFree(result_);
  cudaFree(partials_);
}

void CudaBackend::sync() {
  DISTVAE_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

// ---------------------------------------------------------------- memory

float* CudaBackend::alloc(size_t n) {
  if (n == 0) return nullptr;
  void* p = nullptr;
  DISTVAE_CUDA_CHECK(cudaMalloc(&p, bytes(n)));
  DISTVAE_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes(n), stream_));  // the interface zero-initialises
  return static_cast<float*>(p);
}

void CudaBackend::release(float* p) {
  if (!p) return;
  // Called from destructors (ParamStore, Network): report, never throw. The sync makes sure no
  // queued kernel still reads the buffer.
  cudaError_t rc = cudaStreamSynchronize(stream_);
  if (rc == cudaSuccess) rc = cudaFree(p);
  if (rc != cudaSuccess)
    std::fprintf(stderr, "distvae: warning: releasing CUDA memory failed: %s\n",
                 cudaGetErrorString(rc));
}

// Both copies wait for completion: the caller may reuse or read the host buffer on return (a
// pinned buffer would otherwise still be read by the DMA engine).
void CudaBackend::to_device(const float* host, float* dev, size_t n) {
  if (n == 0) return;
  DISTVAE_CUDA_CHECK(cudaMemcpyAsync(dev, host, bytes(n), cudaMemcpyHostToDevice, stream_));
  sync();
}

void CudaBackend::to_host(const float* dev, float* host, size_t n) {
  if (n == 0) return;
  DISTVAE_CUDA_CHECK(cudaMemcpyAsync(host, dev, bytes(n), cudaMemcpyDeviceToHost, stream_));
  sync();
}

// The copy engine works while stream_ computes, and the host does not wait here: the event orders
// the copy after the compute already queued, which may still read dev.
void CudaBackend::upload_start(const float* host, float* dev, size_t n) {
  if (upload_pending_)
    throw std::logic_error("backend 'cuda': upload_start with an upload still in flight");
  if (n == 0) return;
  DISTVAE_CUDA_CHECK(cudaEventRecord(compute_mark_, stream_));
  DISTVAE_CUDA_CHECK(cudaStreamWaitEvent(copy_stream_, compute_mark_, 0));
  DISTVAE_CUDA_CHECK(cudaMemcpyAsync(dev, host, bytes(n), cudaMemcpyHostToDevice, copy_stream_));
  DISTVAE_CUDA_CHECK(cudaEventRecord(upload_done_, copy_stream_));
  upload_pending_ = true;
}

// Compute queued from now on waits for the copy on the device; the host waits only for the copy
// itself (started a step earlier, so normally long done) before its buffer may be reused.
void CudaBackend::upload_wait() {
  if (!upload_pending_) return;
  upload_pending_ = false;
  DISTVAE_CUDA_CHECK(cudaStreamWaitEvent(stream_, upload_done_, 0));
  DISTVAE_CUDA_CHECK(cudaEventSynchronize(upload_done_));
}

void CudaBackend::fill(float* x, size_t n, float value) {
  if (value == 0.0f && !std::signbit(value))
    DISTVAE_CUDA_CHECK(cudaMemsetAsync(x, 0, bytes(n), stream_));  // all-zero bits are +0.0f
  else
    cuda::fill(x, n, value, stream_);
}

void CudaBackend::copy(const float* src, float* dst, size_t n) {
  if (n == 0 || src == dst) return;
  DISTVAE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes(n), cudaMemcpyDeviceToDevice, stream_));
}

// ---------------------------------------------------------------- linear
// Row-major (B, F) is column-major (F, B) with leading dimension F, so every product below is the
// row-major formula read column-major:
//   y^T (Out, B) = w (Out, In) . x^T (In, B)        w is stored column-major as (In, Out): op T
//   dx^T (In, B) = w^T (In, Out) . dy^T (Out, B)    w as stored, no transpose
//   dw^T (In, Out) += x^T (In, B) . dy (B, Out)     dy^T stored (Out, B): op T

void CudaBackend::linear_forward(const float* x, const float* w, const float* b, float* y, int B,
                                 int In, int Out, ActSpec act) {
  const LinearEpilogue e = linear_epilogue(b, act);
  matmul_.gemm(true, false, Out, B, In, w, In, x, In, y, Out, 0.0f, e.epilogue, b);
  bias_act(y, e.kernel_bias, B, Out, 1, e.kernel_act, stream_);
}

void CudaBackend::linear_backward_data(const float* dy, const float* w, float* dx, int B, int In,
                                       int Out) {
  matmul_.gemm(false, false, In, B, Out, w, In, dy, Out, dx, In, 0.0f, CUBLASLT_EPILOGUE_DEFAULT,
               nullptr);
}

void CudaBackend::linear_backward_weights(const float* x, const float* dy, float* dw, float* db,
                                          int B, int In, int Out, GradWrite write) {
  const bool acc = write == GradWrite::accumulate;
  matmul_.gemm(false, true, In, Out, B, x, In, dy, Out, dw, In, acc ? 1.0f : 0.0f,
               CUBLASLT_EPILOGUE_DEFAULT, nullptr);
  if (db) bias_grad(dy, db, B, Out, 1, acc, stream_);
}

// ---------------------------------------------------------------- convolution

void CudaBackend::conv2d_forward(const float* x, const float* w, const float* b, float* y,
                                 const ConvGeom& g, ActSpec act) {
  conv_.conv_forward(x, w, y, g);
  bias_act(y, b, g.B, g.Cout, g.Ho * g.Wo, act, stream_);
}

void CudaBackend::conv2d_backward_data(const float* dy, const float* w, float* dx,
                                       const ConvGeom& g) {
  conv_.conv_backward_data(dy, w, dx, g);
}

void CudaBackend::conv2d_backward_weights(const float* x, const float* dy, float* dw, float* db,
                                          const ConvGeom& g, GradWrite write) {
  const bool acc = write == GradWrite::accumulate;
  conv_.conv_backward_weights(x, dy, dw, g, acc);
  if (db) bias_grad(dy, db, g.B, g.Cout, g.Ho * g.Wo, acc, stream_);
}

void CudaBackend::deconv2d_forward(const float* x, const float* w, const float* b, float* y,
                                   const ConvGeom& g, ActSpec act) {
  conv_.deconv_forward(x, w, y, g);
  bias_act(y, b, g.B, g.Cout, g.Ho * g.Wo, act, stream_);
}

void CudaBackend::deconv2d_backward_data(const float* dy, const float* w, float* dx,
                                         const ConvGeom& g) {
  conv_.deconv_backward_data(dy, w, dx, g);
}

void CudaBackend::deconv2d_backward_weights(const float* x, const float* dy, float* dw, float* db,
                                            const ConvGeom& g, GradWrite write) {
  const bool acc = write == GradWrite::accumulate;
  conv_.deconv_backward_weights(x, dy, dw, g, acc);
  if (db) bias_grad(dy, db, g.B, g.Cout, g.Ho * g.Wo, acc, stream_);
}

// ---------------------------------------------------------------- elementwise

void CudaBackend::act_forward(const float* x, float* y, size_t n, ActSpec act) {
  cuda::act_forward(x, y, n, act, stream_);
}

void CudaBackend::act_backward(const float* y, const float* dy, float* dx, size_t n, ActSpec act) {
  cuda::act_backward(y, dy, dx, n, act, stream_);
}

void CudaBackend::axpy(size_t n, float a, const float* x, float* y) {
  cuda::axpy(n, a, x, y, stream_);
}

void CudaBackend::scale(size_t n, float a, float* x) {
  cuda::scale(n, a, x, stream_);
}

void CudaBackend::mul(size_t n, const float* a, float* x) {
  cuda::mul(n, a, x, stream_);
}

double CudaBackend::sum_squares(const float* x, size_t n) {
  cuda::sum_squares(x, n, partials_, result_, stream_);
  DISTVAE_CUDA_CHECK(
      cudaMemcpyAsync(host_result_, result_, sizeof(double), cudaMemcpyDeviceToHost, stream_));
  sync();
  return *host_result_;
}

// a (B, Da) = h[:, :Da], b (B, Db) = h[:, Da:]: two strided copies of B rows.
void CudaBackend::split_rows(const float* h, float* a, float* b, int B, int Da, int Db) {
  if (B == 0) return;
  const size_t row = bytes(size_t(Da) + size_t(Db));
  if (a && Da > 0)
    DISTVAE_CUDA_CHECK(cudaMemcpy2DAsync(a, bytes(size_t(Da)), h, row, bytes(size_t(Da)), size_t(B),
                                         cudaMemcpyDeviceToDevice, stream_));
  if (Db > 0)
    DISTVAE_CUDA_CHECK(cudaMemcpy2DAsync(b, bytes(size_t(Db)), h + Da, row, bytes(size_t(Db)),
                                         size_t(B), cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::join_rows(const float* a, const float* b, float* h, int B, int Da, int Db) {
  if (B == 0) return;
  const size_t row = bytes(size_t(Da) + size_t(Db));
  if (Da > 0)
    DISTVAE_CUDA_CHECK(cudaMemcpy2DAsync(h, row, a, bytes(size_t(Da)), bytes(size_t(Da)), size_t(B),
                                         cudaMemcpyDeviceToDevice, stream_));
  if (Db > 0)
    DISTVAE_CUDA_CHECK(cudaMemcpy2DAsync(h + Da, row, b, bytes(size_t(Db)), bytes(size_t(Db)),
                                         size_t(B), cudaMemcpyDeviceToDevice, stream_));
}

bool CudaBackend::all_finite(const float* x, size_t n) {
  any_nonfinite(x, n, flag_, stream_);
  DISTVAE_CUDA_CHECK(
      cudaMemcpyAsync(host_flag_, flag_, sizeof(int), cudaMemcpyDeviceToHost, stream_));
  sync();
  return *host_flag_ == 0;
}

// ---------------------------------------------------------------- batch normalization

void CudaBackend::batchnorm_sums(const float* x, float* sums, int B, int C, int S) {
  cuda::batchnorm_sums(x, sums, B, C, S, stream_);
}

void CudaBackend::batchnorm_moments(const float* sums, float* running_mean, float* running_var,
                                    float* mean, float* invstd, int C, float eps, float momentum,
                                    bool training) {
  cuda::batchnorm_moments(sums, running_mean, running_var, mean, invstd, C, eps, momentum, training,
                          stream_);
}

void CudaBackend::batchnorm_forward(const float* x, const float* mean, const float* invstd,
                                    const float* gamma, const float* beta, float* y, int B, int C,
                                    int S, ActSpec act) {
  cuda::batchnorm_forward(x, mean, invstd, gamma, beta, y, B, C, S, act, stream_);
}

void CudaBackend::batchnorm_backward_sums(const float* x, const float* dy, const float* mean,
                                          const float* invstd, float* dsums, int B, int C, int S) {
  cuda::batchnorm_backward_sums(x, dy, mean, invstd, dsums, B, C, S, stream_);
}

void CudaBackend::batchnorm_backward_data(const float* x, const float* dy, const float* mean,
                                          const float* invstd, const float* gamma,
                                          const float* dsums, float* dx, int B, int C, int S) {
  cuda::batchnorm_backward_data(x, dy, mean, invstd, gamma, dsums, dx, B, C, S, stream_);
}

// ---------------------------------------------------------------- objective kernels

void CudaBackend::reparameterize(const float* mu, const float* logvar, const float* eps, float* z,
                                 size_t n) {
  cuda::reparameterize(mu, logvar, eps, z, n, stream_);
}

void CudaBackend::reparameterize_backward(const float* dz, const float* logvar, const float* eps,
                                          float* dmu, float* dlogvar, size_t n) {
  cuda::reparameterize_backward(dz, logvar, eps, dmu, dlogvar, n, stream_);
}

void CudaBackend::bernoulli_log_lik(const float* logits, const float* x, float* ll, float* dlogits,
                                    float scale, int B, int D) {
  cuda::bernoulli_log_lik(logits, x, ll, dlogits, scale, B, D, stream_);
}

void CudaBackend::gaussian_log_lik(const float* mean, const float* logvar, float fixed_logvar,
                                   float logvar_floor, const float* x, float* ll, float* dmean,
                                   float* dlogvar, float scale, int B, int D) {
  cuda::gaussian_log_lik(mean, logvar, fixed_logvar, logvar_floor, x, ll, dmean, dlogvar, scale, B,
                         D, stream_);
}

void CudaBackend::kl_std_normal(const float* mu, const float* logvar, float* kl, float* kl_dim,
                                int B, int D) {
  cuda::kl_std_normal(mu, logvar, kl, kl_dim, B, D, stream_);
}

void CudaBackend::kl_std_normal_backward(const float* mu, const float* logvar,
                                         const float* dim_weight, float scale, float* dmu,
                                         float* dlogvar, int B, int D) {
  cuda::kl_std_normal_backward(mu, logvar, dim_weight, scale, dmu, dlogvar, B, D, stream_);
}

void CudaBackend::std_normal_log_density(const float* z, float* lp, float* dz, float scale, int B,
                                         int D) {
  cuda::std_normal_log_density(z, lp, dz, scale, B, D, stream_);
}

void CudaBackend::normal_log_density(const float* z, const float* mu, const float* logvar,
                                     float* lq, int B, int D) {
  cuda::normal_log_density(z, mu, logvar, lq, B, D, stream_);
}

// ---------------------------------------------------------------- optimizers

void CudaBackend::adam_update(float* p, const float* g, float* m, float* v, size_t n,
                              const AdamArgs& a) {
  // The same host-side scalars as ReferenceBackend::adam_update, rounded to float the same way.
  const double c1 = 1.0 - std::pow(a.beta1, double(a.step));
  const double c2 = 1.0 - std::pow(a.beta2, double(a.step));
  const AdamScalars s{float(a.beta1),  float(a.beta2), float(a.lr / c1),
                      float(1.0 / c2), float(a.eps),   float(a.lr * a.weight_decay)};
  cuda::adam_update(p, g, m, v, n, s, stream_);
}

void CudaBackend::sgd_update(float* p, const float* g, float* velocity, size_t n,
                             const SgdArgs& a) {
  cuda::sgd_update(p, g, velocity, n, float(a.lr), float(a.momentum), float(a.weight_decay),
                   velocity && a.momentum != 0.0, stream_);
}

// ---------------------------------------------------------------- factory

std::unique_ptr<Backend<float>> make_backend() {
  return std::make_unique<CudaBackend>();
}

}  // namespace distvae::cuda
