// The CUDA backend: every Backend<float> primitive on one GPU. Heavy primitives through cuBLASLt
// (matmul with bias / ReLU epilogues) and cuDNN (convolutions), the rest through distvae's own
// kernels (core/backends/cuda/kernels.h). Memory from alloc() is device memory; parameters,
// gradients and optimizer state therefore live on the device, and only to_device / to_host cross
// the bus.
//
// Stream: all work is enqueued on the calling thread's per-thread default stream
// (cudaStreamPerThread). The NCCL communicator orders its reductions after "the calling thread's
// stream" by events, so backend and communicator need no reference to each other. Use one backend
// per thread, as with the dnnl backend. Batch uploads (upload_start) use a second, copy stream.
#pragma once

#include <cuda_runtime_api.h>

#include <memory>
#include <string>

#include "core/backend.h"
#include "core/backends/cuda/conv.h"
#include "core/backends/cuda/matmul.h"

namespace distvae::cuda {

class CudaBackend final : public Backend<float> {
 public:
  CudaBackend();  // on the current device; throws when there is none
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return "cuda"; }
  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  // cuBLASLt plus cuDNN plans built so far (one per distinct shape and operation).
  size_t cached_plans() const { return matmul_.cached_plans() + conv_.cached_plans(); }

  float* alloc(size_t n) override;
  void release(float* p) override;
  void to_device(const float* host, float* dev, size_t n) override;
  void to_host(const float* dev, float* host, size_t n) override;
  void upload_start(const float* host, float* dev, size_t n) override;
  void upload_wait() override;
  void fill(float* x, size_t n, float value) override;
  void copy(const float* src, float* dst, size_t n) override;

  void linear_forward(const float* x, const float* w, const float* b, float* y, int B, int In,
                      int Out, ActSpec act) override;
  void linear_backward_data(const float* dy, const float* w, float* dx, int B, int In,
                            int Out) override;
  void linear_backward_weights(const float* x, const float* dy, float* dw, float* db, int B, int In,
                               int Out, GradWrite write) override;
  void conv2d_forward(const float* x, const float* w, const float* b, float* y, const ConvGeom& g,
                      ActSpec act) override;
  void conv2d_backward_data(const float* dy, const float* w, float* dx, const ConvGeom& g) override;
  void conv2d_backward_weights(const float* x, const float* dy, float* dw, float* db,
                               const ConvGeom& g, GradWrite write) override;
  void deconv2d_forward(const float* x, const float* w, const float* b, float* y, const ConvGeom& g,
                        ActSpec act) override;
  void deconv2d_backward_data(const float* dy, const float* w, float* dx,
                              const ConvGeom& g) override;
  void deconv2d_backward_weights(const float* x, const float* dy, float* dw, float* db,
                                 const ConvGeom& g, GradWrite write) override;

  void act_forward(const float* x, float* y, size_t n, ActSpec act) override;
  void act_backward(const float* y, const float* dy, float* dx, size_t n, ActSpec act) override;
  void axpy(size_t n, float a, const float* x, float* y) override;
  void scale(size_t n, float a, float* x) override;
  void mul(size_t n, const float* a, float* x) override;
  double sum_squares(const float* x, size_t n) override;
  void split_rows(const float* h, float* a, float* b, int B, int Da, int Db) override;
  void join_rows(const float* a, const float* b, float* h, int B, int Da, int Db) override;
  bool all_finite(const float* x, size_t n) override;

  void batchnorm_sums(const float* x, float* sums, int B, int C, int S) override;
  void batchnorm_moments(const float* sums, float* running_mean, float* running_var, float* mean,
                         float* invstd, int C, float eps, float momentum, bool training) override;
  void batchnorm_forward(const float* x, const float* mean, const float* invstd, const float* gamma,
                         const float* beta, float* y, int B, int C, int S, ActSpec act) override;
  void batchnorm_backward_sums(const float* x, const float* dy, const float* mean,
                               const float* invstd, float* dsums, int B, int C, int S) override;
  void batchnorm_backward_data(const float* x, const float* dy, const float* mean,
                               const float* invstd, const float* gamma, const float* dsums,
                               float* dx, int B, int C, int S) override;

  void reparameterize(const float* mu, const float* logvar, const float* eps, float* z,
                      size_t n) override;
  void reparameterize_backward(const float* dz, const float* logvar, const float* eps, float* dmu,
                               float* dlogvar, size_t n) override;
  void bernoulli_log_lik(const float* logits, const float* x, float* ll, float* dlogits,
                         float scale, int B, int D) override;
  void gaussian_log_lik(const float* mean, const float* logvar, float fixed_logvar,
                        float logvar_floor, const float* x, float* ll, float* dmean, float* dlogvar,
                        float scale, int B, int D) override;
  void kl_std_normal(const float* mu, const float* logvar, float* kl, float* kl_dim, int B,
                     int D) override;
  void kl_std_normal_backward(const float* mu, const float* logvar, const float* dim_weight,
                              float scale, float* dmu, float* dlogvar, int B, int D) override;
  void std_normal_log_density(const float* z, float* lp, float* dz, float scale, int B,
                              int D) override;
  void normal_log_density(const float* z, const float* mu, const float* logvar, float* lq, int B,
                          int D) override;

  void adam_update(float* p, const float* g, float* m, float* v, size_t n,
                   const AdamArgs& a) override;
  void sgd_update(float* p, const float* g, float* velocity, size_t n, const SgdArgs& a) override;

 private:
  void sync();  // waits for the stream: before the host reads a result or reuses a buffer
  int device_ = 0;
  cudaStream_t stream_ = cudaStreamPerThread;
  // Uploads run on their own stream, ordered by events: compute_mark_ (recorded on stream_) holds
  // the copy back until queued work that may read its target is done; upload_done_ marks it landed.
  cudaStream_t copy_stream_ = nullptr;
  cudaEvent_t compute_mark_ = nullptr;
  cudaEvent_t upload_done_ = nullptr;
  bool upload_pending_ = false;
  Matmul matmul_;
  Convolutions conv_;
  // Reduction scratch: first-pass partials and the result on the device, its host copy pinned.
  double* partials_ = nullptr;
  double* result_ = nullptr;
  int* flag_ = nullptr;
  double* host_result_ = nullptr;
  int* host_flag_ = nullptr;
};

}  // namespace distvae::cuda
