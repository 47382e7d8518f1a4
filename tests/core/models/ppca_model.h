// The linear-Gaussian model (probabilistic PCA) in closed form, for tests whose answer must be
// exact: x = W z + b + noise, z ~ N(0, I_k), noise ~ N(0, s2 I_D); the marginal log p(x) =
// log N(x; b, W W^T + s2 I), the exact posterior N(M^-1 W^T (x - b), s2 M^-1) with
// M = W^T W + s2 I, the ELBO of a diagonal Gaussian q, and a Vae<double> set to the model (its
// encoder a single linear map, its decoder W, b with a fixed-variance Gaussian likelihood).
// Used by ppca_test.cpp (the ELBO and the importance-weighted bound) and ais_marginal_test.cpp.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backends/reference.h"
#include "core/layers.h"
#include "core/models/vae.h"
#include "core/network.h"
#include "core/param_store.h"
#include "core/rng.h"

namespace distvae::ppca {

constexpr double kPi = std::numbers::pi;
constexpr int D = 5, K = 2;
inline const double kS2 = 0.3;  // observation noise variance sigma^2

using Mat = std::vector<double>;  // row-major

// ---------------------------------------------------------------- small dense linear algebra

// Lower-triangular L with A = L L^T for a symmetric positive definite n x n A.
inline Mat cholesky(const Mat& a, int n) {
  Mat l(size_t(n) * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j <= i; ++j) {
      double s = a[size_t(i) * n + j];
      for (int k = 0; k < j; ++k) s -= l[size_t(i) * n + k] * l[size_t(j) * n + k];
      if (i == j) {
        if (s <= 0) throw std::runtime_error("cholesky: matrix not positive definite");
        l[size_t(i) * n + i] = std::sqrt(s);
      } else {
        l[size_t(i) * n + j] = s / l[size_t(j) * n + j];
      }
    }
  return l;
}

// Solves A y = r given A's Cholesky factor L.
inline std::vector<double> chol_solve(const Mat& l, int n, std::vector<double> r) {
  for (int i = 0; i < n; ++i) {  // L u = r
    for (int k = 0; k < i; ++k) r[size_t(i)] -= l[size_t(i) * n + k] * r[size_t(k)];
    r[size_t(i)] /= l[size_t(i) * n + i];
  }
  for (int i = n - 1; i >= 0; --i) {  // L^T y = u
    for (int k = i + 1; k < n; ++k) r[size_t(i)] -= l[size_t(k) * n + i] * r[size_t(k)];
    r[size_t(i)] /= l[size_t(i) * n + i];
  }
  return r;
}

inline double chol_logdet(const Mat& l, int n) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += 2 * std::log(l[size_t(i) * n + i]);
  return s;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// ---------------------------------------------------------------- the linear-Gaussian model

struct Ppca {
  Mat w;                  // (D, K) row-major
  std::vector<double> b;  // (D)

  double wcol(int d, int j) const { return w[size_t(d) * K + j]; }

  Mat m() const {  // M = W^T W + s2 I  (K x K)
    Mat out(size_t(K) * K, 0.0);
    for (int i = 0; i < K; ++i)
      for (int j = 0; j < K; ++j) {
        double s = i == j ? kS2 : 0.0;
        for (int d = 0; d < D; ++d) s += wcol(d, i) * wcol(d, j);
        out[size_t(i) * K + j] = s;
      }
    return out;
  }

  // log N(x; b, W W^T + s2 I)
  double log_px(const std::vector<double>& x) const {
    Mat c(size_t(D) * D, 0.0);
    for (int r = 0; r < D; ++r)
      for (int s = 0; s < D; ++s) {
        double v = r == s ? kS2 : 0.0;
        for (int j = 0; j < K; ++j) v += wcol(r, j) * wcol(s, j);
        c[size_t(r) * D + s] = v;
      }
    const Mat l = cholesky(c, D);
    std::vector<double> r(D);
    for (int d = 0; d < D; ++d) r[size_t(d)] = x[size_t(d)] - b[size_t(d)];
    const std::vector<double> y = chol_solve(l, D, r);
    return -0.5 * (D * std::log(2 * kPi) + chol_logdet(l, D) + dot(r, y));
  }

  // The posterior mean map: A = M^-1 W^T (K x D), so E[z|x] = A (x - b).
  Mat posterior_map() const {
    const Mat l = cholesky(m(), K);
    Mat a(size_t(K) * D);
    for (int d = 0; d < D; ++d) {
      std::vector<double> col(K);
      for (int j = 0; j < K; ++j) col[size_t(j)] = wcol(d, j);
      const std::vector<double> y = chol_solve(l, K, col);
      for (int j = 0; j < K; ++j) a[size_t(j) * D + d] = y[size_t(j)];
    }
    return a;
  }

  std::vector<double> posterior_mean(const std::vector<double>& x) const {
    const Mat a = posterior_map();
    std::vector<double> mu(K, 0.0);
    for (int j = 0; j < K; ++j)
      for (int d = 0; d < D; ++d)
        mu[size_t(j)] += a[size_t(j) * D + d] * (x[size_t(d)] - b[size_t(d)]);
    return mu;
  }

  // ELBO of q = N(mq, diag vq), written term by term:
  //   E_q log p(x|z) = -D/2 log(2 pi s2) - (|x - b - W mq|^2 + sum_j (W^T W)_jj vq_j) / (2 s2)
  //   E_q log p(z)   = -K/2 log(2 pi) - (|mq|^2 + sum_j vq_j) / 2
  //   H[q]           = sum_j log(2 pi e vq_j) / 2
  double elbo(const std::vector<double>& x, const std::vector<double>& mq,
              const std::vector<double>& vq) const {
    double resid = 0;
    for (int d = 0; d < D; ++d) {
      double r = x[size_t(d)] - b[size_t(d)];
      for (int j = 0; j < K; ++j) r -= wcol(d, j) * mq[size_t(j)];
      resid += r * r;
    }
    double trace = 0, ent = 0, sum_v = 0;
    for (int j = 0; j < K; ++j) {
      double wtw = 0;
      for (int d = 0; d < D; ++d) wtw += wcol(d, j) * wcol(d, j);
      trace += wtw * vq[size_t(j)];
      sum_v += vq[size_t(j)];
      ent += 0.5 * std::log(2 * kPi * std::exp(1.0) * vq[size_t(j)]);
    }
    const double rec = -0.5 * D * std::log(2 * kPi * kS2) - (resid + trace) / (2 * kS2);
    const double prior = -0.5 * K * std::log(2 * kPi) - 0.5 * (dot(mq, mq) + sum_v);
    return rec + prior + ent;
  }

  // KL(N(mq, diag vq) || exact posterior N(mu, s2 M^-1)); its precision is P = M / s2.
  double kl_to_posterior(const std::vector<double>& x, const std::vector<double>& mq,
                         const std::vector<double>& vq) const {
    const Mat mm = m();
    const std::vector<double> mu = posterior_mean(x);
    double tr = 0, quad = 0, logdet_q = 0;
    for (int i = 0; i < K; ++i) {
      tr += mm[size_t(i) * K + i] / kS2 * vq[size_t(i)];
      logdet_q += std::log(vq[size_t(i)]);
      for (int j = 0; j < K; ++j)
        quad += (mq[size_t(i)] - mu[size_t(i)]) * mm[size_t(i) * K + j] / kS2 *
                (mq[size_t(j)] - mu[size_t(j)]);
    }
    const double logdet_p = chol_logdet(cholesky(mm, K), K) - K * std::log(kS2);
    return 0.5 * (tr + quad - K - logdet_q - logdet_p);
  }

  // Data from the model itself.
  std::vector<double> sample(uint64_t key) const {
    std::vector<double> z(K), e(D), x(D);
    normal_fill(uint64_t{77}, stream_id(rng_purpose::test, key), 0, size_t(K), z.data());
    normal_fill(uint64_t{77}, stream_id(rng_purpose::test, key), 16, size_t(D), e.data());
    for (int d = 0; d < D; ++d) {
      x[size_t(d)] = b[size_t(d)] + std::sqrt(kS2) * e[size_t(d)];
      for (int j = 0; j < K; ++j) x[size_t(d)] += wcol(d, j) * z[size_t(j)];
    }
    return x;
  }
};

inline const std::vector<double> kW1 = {1.0, 0.8, -0.6, 0.4, 0.2};
inline const std::vector<double> kV = {0.3, -1.0, 0.2, 0.8, -0.3};

// w2 = v minus its projection on w1, plus c * w1: c = 0 gives orthogonal columns.
inline Ppca make_ppca(double c) {
  const double proj = dot(kV, kW1) / dot(kW1, kW1);
  Ppca p;
  p.w.resize(size_t(D) * K);
  for (int d = 0; d < D; ++d) {
    p.w[size_t(d) * K + 0] = kW1[size_t(d)];
    p.w[size_t(d) * K + 1] = kV[size_t(d)] - proj * kW1[size_t(d)] + c * kW1[size_t(d)];
  }
  p.b = {0.5, -0.2, 0.1, 0.0, 0.3};
  return p;
}

// The diagonal encoder q(z|x) = N(A (x - b) + shift, diag var): mean map and variances.
struct DiagEncoder {
  Mat a;                      // (K, D)
  std::vector<double> shift;  // (K)
  std::vector<double> var;    // (K)

  std::vector<double> mean(const Ppca& p, const std::vector<double>& x) const {
    std::vector<double> m = shift;
    for (int j = 0; j < K; ++j)
      for (int d = 0; d < D; ++d)
        m[size_t(j)] += a[size_t(j) * D + d] * (x[size_t(d)] - p.b[size_t(d)]);
    return m;
  }
};

// The KL-optimal mean-field Gaussian for a Gaussian target: the exact posterior mean and the
// diagonal of the exact posterior precision, var_j = s2 / M_jj.
inline DiagEncoder optimal_diag(const Ppca& p) {
  const Mat mm = p.m();
  DiagEncoder e{p.posterior_map(), std::vector<double>(K, 0.0), std::vector<double>(K)};
  for (int j = 0; j < K; ++j) e.var[size_t(j)] = kS2 / mm[size_t(j) * K + j];
  return e;
}

// ---------------------------------------------------------------- the model under test

inline LayerSpec linear(int64_t out) {
  LayerSpec s;
  s.type = "linear";
  s.out = out;
  return s;
}

constexpr int kMaxBatch = 1000;

inline std::unique_ptr<Vae<double>> make_vae(ReferenceBackend<double>& be, Estimator est) {
  VaeSpec spec;
  spec.image = Shape{1, 1, D};
  spec.latent = K;
  spec.encoder = {};  // the encoder is the head alone: x -> (mu | logvar)
  spec.decoder = {linear(D)};
  spec.likelihood.kind = Likelihood::gaussian;
  spec.likelihood.learned_variance = false;
  spec.likelihood.fixed_logvar = std::log(kS2);
  spec.estimator = est;
  spec.samples = 1;
  return std::make_unique<Vae<double>>(be, spec, kMaxBatch);
}

inline double* slice(Network<double>& net, const std::string& name, size_t want) {
  for (size_t i = 0; i < net.params().slices().size(); ++i) {
    const ParamSlice& s = net.params().slices()[i];
    if (s.name == name) {
      EXPECT_EQ(s.size, want) << name;
      return net.params().value(i);
    }
  }
  ADD_FAILURE() << "no parameter " << name;
  static std::vector<double> dummy(1000);
  return dummy.data();
}

inline void set_model(Vae<double>& vae, const Ppca& p, const DiagEncoder& e) {
  Network<double>& enc = vae.encoder();
  Network<double>& dec = vae.decoder();
  ASSERT_EQ(enc.params().size(), size_t(2 * K) * D + 2 * K) << "one linear layer expected";
  ASSERT_EQ(dec.params().size(), size_t(D) * K + D) << "one linear layer expected";
  double* ew = slice(enc, "encoder.0.weight", size_t(2 * K) * D);  // (2K, D)
  double* eb = slice(enc, "encoder.0.bias", size_t(2 * K));
  double* dw = slice(dec, "decoder.0.weight", size_t(D) * K);  // (D, K)
  double* db = slice(dec, "decoder.0.bias", size_t(D));
  for (int j = 0; j < K; ++j) {
    double off = e.shift[size_t(j)];
    for (int d = 0; d < D; ++d) {
      ew[size_t(j) * D + d] = e.a[size_t(j) * D + d];  // mu rows
      ew[size_t(K + j) * D + d] = 0.0;                 // logvar rows: constant
      off -= e.a[size_t(j) * D + d] * p.b[size_t(d)];
    }
    eb[j] = off;
    eb[K + j] = std::log(e.var[size_t(j)]);
  }
  for (size_t i = 0; i < p.w.size(); ++i) dw[i] = p.w[i];
  for (int d = 0; d < D; ++d) db[d] = p.b[size_t(d)];
}

}  // namespace distvae::ppca
