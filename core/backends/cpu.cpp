// CpuBackend: each primitive forwards to a loop compiled once per x86-64 level (virtual functions
// cannot be multiversioned, free functions can). The loops use float SIMD lanes, the compute
// threads above 64k values, and double where a sum spans a whole batch.
#include "core/backends/cpu.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "core/backends/fast_math.h"
#include "core/backends/isa_clones.h"

namespace distvae {

namespace {
namespace loops {

constexpr size_t kThreadAbove = 65536;  // below this a parallel region costs more than it saves

DISTVAE_ISA_CLONES void fill(float* x, size_t n, float value) {
#pragma omp parallel for simd if (n > kThreadAbove)
  for (size_t i = 0; i < n; ++i) x[i] = value;
}

DISTVAE_ISA_CLONES void axpy(size_t n, float a, const float* x, float* y) {
#pragma omp parallel for simd if (n > kThreadAbove)
  for (size_t i = 0; i < n; ++i) y[i] += a * x[i];
}

DISTVAE_ISA_CLONES void scale(size_t n, float a, float* x) {
#pragma omp parallel for simd if (n > kThreadAbove)
  for (size_t i = 0; i < n; ++i) x[i] *= a;
}

// Blocks of a branch-free test (NaN fails the comparison) so the scan vectorizes; the answer is
// almost always "yes", so an early exit would only stop that. Over the threads: run alone, the
// scan of a network's gradients leaves the other compute threads waiting.
DISTVAE_ISA_CLONES bool all_finite(const float* x, size_t n) {
  constexpr size_t kBlock = 4096;
  const float largest = std::numeric_limits<float>::max();
  int finite = 1;
#pragma omp parallel for reduction(& : finite) if (n > kThreadAbove)
  for (size_t start = 0; start < n; start += kBlock) {
    const size_t end = std::min(n, start + kBlock);
    int block = 1;
    for (size_t i = start; i < end; ++i) block &= int(std::abs(x[i]) <= largest);
    finite &= block;
  }
  return finite != 0;
}

// ---- batch normalization: a row's float partial sums cover at most H * W values; the double
// across rows keeps a large batch exact enough. The reference's scalar loops were a fifth of the
// Fashion-MNIST DCGAN's step; oneDNN 2.6's batch normalization primitive has no fused activation
// and no way to all-reduce its statistics between its two passes.

DISTVAE_ISA_CLONES void batchnorm_sums(const float* x, float* sums, int B, int C, int S) {
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; ++c) {
    double t1 = 0, t2 = 0;
    for (int b = 0; b < B; ++b) {
      const float* row = x + (size_t(b) * C + c) * S;
      float a1 = 0, a2 = 0;
#pragma omp simd reduction(+ : a1, a2)
      for (int i = 0; i < S; ++i) a1 += row[i], a2 += row[i] * row[i];
      t1 += a1, t2 += a2;
    }
    sums[c] = float(t1), sums[C + c] = float(t2);
  }
  sums[2 * C] = float(double(B) * S);
}

DISTVAE_ISA_CLONES void batchnorm_affine(const float* x, const float* mean, const float* invstd,
                                         const float* gamma, const float* beta, float* y, int B,
                                         int C, int S) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int c = 0; c < C; ++c) {
      const float a = gamma[c] * invstd[c], shift = beta[c] - mean[c] * a;  // y = a x + shift
      const size_t row = (size_t(b) * C + c) * S;
#pragma omp simd
      for (int i = 0; i < S; ++i) y[row + i] = a * x[row + i] + shift;
    }
}

DISTVAE_ISA_CLONES void batchnorm_backward_sums(const float* x, const float* dy, const float* mean,
                                                const float* invstd, float* dsums, int B, int C,
                                                int S) {
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; ++c) {
    const float m = mean[c], is = invstd[c];
    double t1 = 0, t2 = 0;
    for (int b = 0; b < B; ++b) {
      const size_t row = (size_t(b) * C + c) * S;
      float a1 = 0, a2 = 0;
#pragma omp simd reduction(+ : a1, a2)
      for (int i = 0; i < S; ++i) a1 += dy[row + i], a2 += dy[row + i] * (x[row + i] - m) * is;
      t1 += a1, t2 += a2;
    }
    dsums[c] = float(t1), dsums[C + c] = float(t2);
  }
  dsums[2 * C] = float(double(B) * S);
}

DISTVAE_ISA_CLONES void batchnorm_backward_data(const float* x, const float* dy, const float* mean,
                                                const float* invstd, const float* gamma,
                                                const float* dsums, float* dx, int B, int C,
                                                int S) {
  const float inv_n = 1.0f / dsums[2 * C];
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int c = 0; c < C; ++c) {
      // dx = k (dy - m1 - xhat m2) with xhat = (x - mean) invstd
      const float is = invstd[c], k = gamma[c] * is, m1 = dsums[c] * inv_n,
                  m2 = dsums[C + c] * inv_n * is, mc = mean[c];
      const size_t row = (size_t(b) * C + c) * S;
#pragma omp simd
      for (int i = 0; i < S; ++i) dx[row + i] = k * (dy[row + i] - m1 - (x[row + i] - mc) * m2);
    }
}

// ---- objective kernels

DISTVAE_ISA_CLONES void reparameterize(const float* mu, const float* logvar, const float* eps,
                                       float* z, size_t n) {
  for (size_t i = 0; i < n; ++i) z[i] = mu[i] + std::exp(0.5f * logvar[i]) * eps[i];
}

DISTVAE_ISA_CLONES void reparameterize_backward(const float* dz, const float* logvar,
                                                const float* eps, float* dmu, float* dlogvar,
                                                size_t n) {
  for (size_t i = 0; i < n; ++i) {
    dmu[i] += dz[i];
    dlogvar[i] += dz[i] * eps[i] * 0.5f * std::exp(0.5f * logvar[i]);
  }
}

// One row of bernoulli_log_lik, inlined into each ISA copy of its caller. The gradient store is a
// template flag so the loop has no branch and, with the simd reduction (a double sum may not be
// reordered otherwise), vectorizes.
template <bool kGrad>
[[gnu::always_inline]] inline float bernoulli_row(const float* __restrict logits,
                                                  const float* __restrict x,
                                                  float* __restrict dlogits, float scale, int D) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int d = 0; d < D; ++d) {
    const float l = logits[d];
    // one exp serves softplus and sigmoid
    const float e = exp_nonpositive(-std::abs(l));
    // softplus(l) = max(l, 0) + log(1 + e^-|l|);  sigmoid(l) = 1/(1 + e) or e/(1 + e)
    const float softplus = (l > 0.0f ? l : 0.0f) + log1p_unit(e);
    s += double(x[d]) * double(l) - double(softplus);
    if constexpr (kGrad) dlogits[d] = scale * (x[d] - (l >= 0.0f ? 1.0f : e) / (1.0f + e));
  }
  return float(s);
}

DISTVAE_ISA_CLONES void bernoulli_log_lik(const float* logits, const float* x, float* ll,
                                          float* dlogits, float scale, int B, int D) {
#pragma omp parallel for if (size_t(B) * size_t(D) > kThreadAbove)
  for (int b = 0; b < B; ++b) {
    const size_t o = size_t(b) * D;
    ll[b] = dlogits ? bernoulli_row<true>(logits + o, x + o, dlogits + o, scale, D)
                    : bernoulli_row<false>(logits + o, x + o, nullptr, scale, D);
  }
}

DISTVAE_ISA_CLONES void kl_std_normal(const float* mu, const float* logvar, float* kl,
                                      float* kl_dim, int B, int D) {
  if (kl_dim) std::fill(kl_dim, kl_dim + D, 0.0f);
  for (int b = 0; b < B; ++b) {
    double s = 0;
    for (int d = 0; d < D; ++d) {
      const size_t i = size_t(b) * D + d;
      const float t = 0.5f * (mu[i] * mu[i] + std::exp(logvar[i]) - logvar[i] - 1.0f);
      s += double(t);
      if (kl_dim) kl_dim[d] += t;
    }
    kl[b] = float(s);
  }
}

DISTVAE_ISA_CLONES void kl_std_normal_backward(const float* mu, const float* logvar,
                                               const float* dim_weight, float scale, float* dmu,
                                               float* dlogvar, int B, int D) {
  for (int b = 0; b < B; ++b)
    for (int d = 0; d < D; ++d) {
      const size_t i = size_t(b) * D + d;
      const float s = dim_weight ? scale * dim_weight[d] : scale;
      dmu[i] += s * mu[i];
      dlogvar[i] += s * 0.5f * std::expm1(logvar[i]);
    }
}

// ---- optimizers: elementwise over the flat buffer, threads across it, SIMD within

DISTVAE_ISA_CLONES void adam_update(float* p, const float* g, float* m, float* v, size_t n,
                                    const AdamArgs& a) {
  // m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
  // p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + lr wd p
  const double c1 = 1.0 - std::pow(a.beta1, double(a.step));
  const double c2 = 1.0 - std::pow(a.beta2, double(a.step));
  const float b1 = float(a.beta1), b2 = float(a.beta2);
  const float step = float(a.lr / c1), inv_c2 = float(1.0 / c2), eps = float(a.eps),
              decay = float(a.lr * a.weight_decay);
#pragma omp parallel for simd if (n > kThreadAbove)
  for (size_t i = 0; i < n; ++i) {
    m[i] = b1 * m[i] + (1.0f - b1) * g[i];
    v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    p[i] -= step * m[i] / (std::sqrt(v[i] * inv_c2) + eps) + decay * p[i];
  }
}

DISTVAE_ISA_CLONES void sgd_update(float* p, const float* g, float* velocity, size_t n,
                                   const SgdArgs& a) {
  // g' = g + wd p;  v = mu v + g';  p -= lr v   (no momentum: p -= lr g')
  const float lr = float(a.lr), mu = float(a.momentum), wd = float(a.weight_decay);
  const bool use_velocity = velocity && a.momentum != 0.0;
#pragma omp parallel for simd if (n > kThreadAbove)
  for (size_t i = 0; i < n; ++i) {
    float gi = g[i] + wd * p[i];
    if (use_velocity) {
      velocity[i] = mu * velocity[i] + gi;
      gi = velocity[i];
    }
    p[i] -= lr * gi;
  }
}

}  // namespace loops
}  // namespace

void CpuBackend::fill(float* x, size_t n, float value) {
  loops::fill(x, n, value);
}

void CpuBackend::axpy(size_t n, float a, const float* x, float* y) {
  loops::axpy(n, a, x, y);
}

void CpuBackend::scale(size_t n, float a, float* x) {
  loops::scale(n, a, x);
}

bool CpuBackend::all_finite(const float* x, size_t n) {
  return loops::all_finite(x, n);
}

void CpuBackend::batchnorm_sums(const float* x, float* sums, int B, int C, int S) {
  loops::batchnorm_sums(x, sums, B, C, S);
}

void CpuBackend::batchnorm_forward(const float* x, const float* mean, const float* invstd,
                                   const float* gamma, const float* beta, float* y, int B, int C,
                                   int S, ActSpec act) {
  loops::batchnorm_affine(x, mean, invstd, gamma, beta, y, B, C, S);
  act_forward(y, y, size_t(B) * C * S, act);  // in place (oneDNN's eltwise in DnnlBackend)
}

void CpuBackend::batchnorm_backward_sums(const float* x, const float* dy, const float* mean,
                                         const float* invstd, float* dsums, int B, int C, int S) {
  loops::batchnorm_backward_sums(x, dy, mean, invstd, dsums, B, C, S);
}

void CpuBackend::batchnorm_backward_data(const float* x, const float* dy, const float* mean,
                                         const float* invstd, const float* gamma,
                                         const float* dsums, float* dx, int B, int C, int S) {
  loops::batchnorm_backward_data(x, dy, mean, invstd, gamma, dsums, dx, B, C, S);
}

void CpuBackend::reparameterize(const float* mu, const float* logvar, const float* eps, float* z,
                                size_t n) {
  loops::reparameterize(mu, logvar, eps, z, n);
}

void CpuBackend::reparameterize_backward(const float* dz, const float* logvar, const float* eps,
                                         float* dmu, float* dlogvar, size_t n) {
  loops::reparameterize_backward(dz, logvar, eps, dmu, dlogvar, n);
}

void CpuBackend::bernoulli_log_lik(const float* logits, const float* x, float* ll, float* dlogits,
                                   float scale, int B, int D) {
  loops::bernoulli_log_lik(logits, x, ll, dlogits, scale, B, D);
}

void CpuBackend::kl_std_normal(const float* mu, const float* logvar, float* kl, float* kl_dim,
                               int B, int D) {
  loops::kl_std_normal(mu, logvar, kl, kl_dim, B, D);
}

void CpuBackend::kl_std_normal_backward(const float* mu, const float* logvar,
                                        const float* dim_weight, float scale, float* dmu,
                                        float* dlogvar, int B, int D) {
  loops::kl_std_normal_backward(mu, logvar, dim_weight, scale, dmu, dlogvar, B, D);
}

void CpuBackend::adam_update(float* p, const float* g, float* m, float* v, size_t n,
                             const AdamArgs& a) {
  loops::adam_update(p, g, m, v, n, a);
}

void CpuBackend::sgd_update(float* p, const float* g, float* velocity, size_t n, const SgdArgs& a) {
  loops::sgd_update(p, g, velocity, n, a);
}

}  // namespace distvae
