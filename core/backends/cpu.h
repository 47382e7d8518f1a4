// The CPU fast paths: the elementwise, objective, batch-norm and optimizer primitives spread over
// the compute threads (OpenMP) and the vector units (core/backends/fast_math.h's vectorizable exp
// and log1p; one copy of each loop per x86-64 level, core/backends/isa_clones.h). The heavy
// primitives (matmul, convolution, activations) stay the reference's plain loops here: DnnlBackend,
// built on this class, replaces them with oneDNN. Tests compare CpuBackend and DnnlBackend with the
// plain ReferenceBackend, which never shares a loop with them.
#pragma once

#include <cstddef>
#include <string>

#include "core/backends/reference.h"

namespace distvae {

class CpuBackend : public ReferenceBackend<float> {
 public:
  std::string name() const override { return "cpu"; }

  void fill(float* x, size_t n, float value) override;
  void axpy(size_t n, float a, const float* x, float* y) override;
  void scale(size_t n, float a, float* x) override;
  bool all_finite(const float* x, size_t n) override;

  // Threaded over channels (sums) or (b, c) rows (elementwise); the moments (C values) are the
  // reference's. batchnorm_forward applies the activation through act_forward (oneDNN's eltwise
  // in DnnlBackend).
  void batchnorm_sums(const float* x, float* sums, int B, int C, int S) override;
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
  void kl_std_normal(const float* mu, const float* logvar, float* kl, float* kl_dim, int B,
                     int D) override;
  void kl_std_normal_backward(const float* mu, const float* logvar, const float* dim_weight,
                              float scale, float* dmu, float* dlogvar, int B, int D) override;

  void adam_update(float* p, const float* g, float* m, float* v, size_t n,
                   const AdamArgs& a) override;
  void sgd_update(float* p, const float* g, float* velocity, size_t n, const SgdArgs& a) override;
};

}  // namespace distvae
