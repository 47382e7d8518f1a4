// The reference backend: plain loops over any scalar type (double for gradient checks), the oracle
// every fast path is compared with. Never optimized: CpuBackend (core/backends/cpu.h) derives from
// ReferenceBackend<float> for the primitives it has no faster loop for, and replaces the rest.
#pragma once

#include "core/backend.h"

namespace distvae {

template <class T>
class ReferenceBackend : public Backend<T> {
 public:
  std::string name() const override { return "reference"; }

  T* alloc(size_t n) override;
  void release(T* p) override;
  void to_device(const T* host, T* dev, size_t n) override { copy(host, dev, n); }
  void to_host(const T* dev, T* host, size_t n) override { copy(dev, host, n); }
  void upload_start(const T* host, T* dev, size_t n) override { copy(host, dev, n); }
  void upload_wait() override {}
  void fill(T* x, size_t n, T value) override;
  void copy(const T* src, T* dst, size_t n) override;

  void linear_forward(const T* x, const T* w, const T* b, T* y, int B, int In, int Out,
                      ActSpec act) override;
  void linear_backward_data(const T* dy, const T* w, T* dx, int B, int In, int Out) override;
  void linear_backward_weights(const T* x, const T* dy, T* dw, T* db, int B, int In, int Out,
                               GradWrite write) override;
  void conv2d_forward(const T* x, const T* w, const T* b, T* y, const ConvGeom& g,
                      ActSpec act) override;
  void conv2d_backward_data(const T* dy, const T* w, T* dx, const ConvGeom& g) override;
  void conv2d_backward_weights(const T* x, const T* dy, T* dw, T* db, const ConvGeom& g,
                               GradWrite write) override;
  void deconv2d_forward(const T* x, const T* w, const T* b, T* y, const ConvGeom& g,
                        ActSpec act) override;
  void deconv2d_backward_data(const T* dy, const T* w, T* dx, const ConvGeom& g) override;
  void deconv2d_backward_weights(const T* x, const T* dy, T* dw, T* db, const ConvGeom& g,
                                 GradWrite write) override;

  void act_forward(const T* x, T* y, size_t n, ActSpec act) override;
  void act_backward(const T* y, const T* dy, T* dx, size_t n, ActSpec act) override;
  void axpy(size_t n, T a, const T* x, T* y) override;
  void scale(size_t n, T a, T* x) override;
  void mul(size_t n, const T* a, T* x) override;
  double sum_squares(const T* x, size_t n) override;
  void split_rows(const T* h, T* a, T* b, int B, int Da, int Db) override;
  void join_rows(const T* a, const T* b, T* h, int B, int Da, int Db) override;
  bool all_finite(const T* x, size_t n) override;

  void batchnorm_sums(const T* x, T* sums, int B, int C, int S) override;
  void batchnorm_moments(const T* sums, T* running_mean, T* running_var, T* mean, T* invstd, int C,
                         T eps, T momentum, bool training) override;
  void batchnorm_forward(const T* x, const T* mean, const T* invstd, const T* gamma, const T* beta,
                         T* y, int B, int C, int S, ActSpec act) override;
  void batchnorm_backward_sums(const T* x, const T* dy, const T* mean, const T* invstd, T* dsums,
                               int B, int C, int S) override;
  void batchnorm_backward_data(const T* x, const T* dy, const T* mean, const T* invstd,
                               const T* gamma, const T* dsums, T* dx, int B, int C, int S) override;

  void reparameterize(const T* mu, const T* logvar, const T* eps, T* z, size_t n) override;
  void reparameterize_backward(const T* dz, const T* logvar, const T* eps, T* dmu, T* dlogvar,
                               size_t n) override;
  void bernoulli_log_lik(const T* logits, const T* x, T* ll, T* dlogits, T scale, int B,
                         int D) override;
  void gaussian_log_lik(const T* mean, const T* logvar, T fixed_logvar, T logvar_floor, const T* x,
                        T* ll, T* dmean, T* dlogvar, T scale, int B, int D) override;
  void kl_std_normal(const T* mu, const T* logvar, T* kl, T* kl_dim, int B, int D) override;
  void kl_std_normal_backward(const T* mu, const T* logvar, const T* dim_weight, T scale, T* dmu,
                              T* dlogvar, int B, int D) override;
  void std_normal_log_density(const T* z, T* lp, T* dz, T scale, int B, int D) override;
  void normal_log_density(const T* z, const T* mu, const T* logvar, T* lq, int B, int D) override;

  void adam_update(T* p, const T* g, T* m, T* v, size_t n, const AdamArgs& a) override;
  void sgd_update(T* p, const T* g, T* velocity, size_t n, const SgdArgs& a) override;
};

extern template class ReferenceBackend<float>;
extern template class ReferenceBackend<double>;

}  // namespace distvae
