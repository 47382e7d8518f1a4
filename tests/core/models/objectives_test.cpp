// The objective kernels and the VAE loss: every kernel's values against formulas written here and
// its gradient against central finite differences (ReferenceBackend<double>); the analytic KL
// against a Monte Carlo average of log q(z|x) - log p(z); and the whole-model parameter gradients
// of Vae<double>::train_step (estimators A and B, L = 1 and 2, Bernoulli and Gaussian decoders,
// beta != 1, free bits) against central finite differences of the loss rebuilt from
// evaluate_elbo's per-image outputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numbers>
#include <ostream>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/backends/reference.h"
#include "core/layers.h"
#include "core/models/vae.h"
#include "core/network.h"
#include "core/rng.h"
#include "tests/rel_err.h"

namespace distvae {
namespace {

constexpr double kPi = std::numbers::pi;
constexpr double kLog2Pi = 1.8378770664093454835606594728112;

double rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  return distvae::rel_err(a.data(), b.data(), std::min(a.size(), b.size()));
}

// Deterministic test draws: normal / uniform numbers from a test stream.
std::vector<double> normals(uint64_t key, size_t n, double scale = 1.0, double shift = 0.0) {
  std::vector<double> v(n);
  normal_fill(uint64_t{20240601}, stream_id(rng_purpose::test, key), 0, n, v.data());
  for (double& x : v) x = shift + scale * x;
  return v;
}

std::vector<double> uniforms(uint64_t key, size_t n, double lo = 0.0, double hi = 1.0) {
  std::vector<double> v(n);
  uniform_fill(uint64_t{20240601}, stream_id(rng_purpose::test, key), 0, n, v.data());
  for (double& x : v) x = lo + (hi - lo) * x;
  return v;
}

double sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

// Central difference of f with respect to every element of v (v restored afterwards).
std::vector<double> central_diff(std::vector<double>& v, const std::function<double()>& f,
                                 double h = 1e-5) {
  std::vector<double> g(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const double keep = v[i];
    v[i] = keep + h;
    const double up = f();
    v[i] = keep - h;
    const double down = f();
    v[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

constexpr int kB = 3, kD = 5;
constexpr size_t kN = size_t(kB) * kD;
constexpr double kTol = 1e-6;

class ObjectiveKernels : public ::testing::Test {
 protected:
  ReferenceBackend<double> be;
};

// ---------------------------------------------------------------- (a) kernel gradients

TEST_F(ObjectiveKernels, ReparameterizeValueAndBackward) {
  std::vector<double> mu = normals(1, kN), lv = normals(2, kN, 0.8), eps = normals(3, kN);
  std::vector<double> z(kN);
  be.reparameterize(mu.data(), lv.data(), eps.data(), z.data(), kN);
  for (size_t i = 0; i < kN; ++i)
    EXPECT_NEAR(z[i], mu[i] + std::exp(lv[i] / 2) * eps[i], 1e-14) << i;

  // f = sum_i g_i z_i: its gradient wrt (mu, logvar) is what reparameterize_backward adds for
  // dz = g. The outputs accumulate, so start them from nonzero values.
  const std::vector<double> g = normals(4, kN);
  auto f = [&] {
    std::vector<double> zz(kN);
    be.reparameterize(mu.data(), lv.data(), eps.data(), zz.data(), kN);
    double s = 0;
    for (size_t i = 0; i < kN; ++i) s += g[i] * zz[i];
    return s;
  };
  const std::vector<double> dmu0 = normals(5, kN), dlv0 = normals(6, kN);
  std::vector<double> dmu = dmu0, dlv = dlv0;
  be.reparameterize_backward(g.data(), lv.data(), eps.data(), dmu.data(), dlv.data(), kN);
  for (size_t i = 0; i < kN; ++i) dmu[i] -= dmu0[i], dlv[i] -= dlv0[i];
  EXPECT_LT(rel_err(dmu, central_diff(mu, f)), kTol);
  EXPECT_LT(rel_err(dlv, central_diff(lv, f)), kTol);
}

TEST_F(ObjectiveKernels, BernoulliLogLikValueAndGradient) {
  std::vector<double> logits = normals(10, kN, 3.0);
  logits[0] = 40.0, logits[1] = -40.0;  // the stable form must hold far out
  const std::vector<double> x = uniforms(11, kN);
  std::vector<double> ll(kB), dl(kN);
  const double scale = -0.37;
  be.bernoulli_log_lik(logits.data(), x.data(), ll.data(), dl.data(), scale, kB, kD);
  for (int b = 0; b < kB; ++b) {
    double s = 0;
    for (int d = 0; d < kD; ++d) {
      const size_t i = size_t(b) * kD + d;
      // log p = x log sigmoid(l) + (1 - x) log(1 - sigmoid(l))
      const double l = logits[i];
      const double log_sig = l > 0 ? -std::log1p(std::exp(-l)) : l - std::log1p(std::exp(l));
      const double log_one_minus = log_sig - l;
      s += x[i] * log_sig + (1 - x[i]) * log_one_minus;
    }
    EXPECT_NEAR(ll[size_t(b)], s, 1e-12 * std::max(1.0, std::abs(s))) << b;
  }
  auto f = [&] {
    std::vector<double> out(kB);
    be.bernoulli_log_lik(logits.data(), x.data(), out.data(), nullptr, 0.0, kB, kD);
    return scale * sum(out);
  };
  EXPECT_LT(rel_err(dl, central_diff(logits, f)), kTol);
}

TEST_F(ObjectiveKernels, GaussianLogLikLearnedVarianceWithFloor) {
  std::vector<double> mean = normals(20, kN), lv = normals(21, kN, 1.5), x = normals(22, kN);
  const double floor = -0.5, scale = 0.61;
  // Keep every logvar clear of the floor by more than the difference step, so the central
  // differences see either side of the kink only; and make sure both sides occur.
  for (double& v : lv)
    if (std::abs(v - floor) < 0.05) v = floor + (v < floor ? -0.05 : 0.05);
  int floored = 0;
  for (double v : lv) floored += v < floor;
  ASSERT_GE(floored, 2);
  ASSERT_LE(floored, int(kN) - 2);

  std::vector<double> ll(kB), dm(kN, 99.0), dv(kN, 99.0);  // overwritten, not accumulated
  be.gaussian_log_lik(mean.data(), lv.data(), 0.0, floor, x.data(), ll.data(), dm.data(), dv.data(),
                      scale, kB, kD);
  for (int b = 0; b < kB; ++b) {
    double s = 0;
    for (int d = 0; d < kD; ++d) {
      const size_t i = size_t(b) * kD + d;
      const double v = std::max(lv[i], floor), var = std::exp(v);
      s += -0.5 * std::log(2 * kPi * var) - (x[i] - mean[i]) * (x[i] - mean[i]) / (2 * var);
    }
    EXPECT_NEAR(ll[size_t(b)], s, 1e-12 * std::max(1.0, std::abs(s))) << b;
  }
  auto f = [&] {
    std::vector<double> out(kB);
    be.gaussian_log_lik(mean.data(), lv.data(), 0.0, floor, x.data(), out.data(), nullptr, nullptr,
                        0.0, kB, kD);
    return scale * sum(out);
  };
  EXPECT_LT(rel_err(dm, central_diff(mean, f)), kTol);
  const std::vector<double> fd_lv = central_diff(lv, f);
  EXPECT_LT(rel_err(dv, fd_lv), kTol);
  for (size_t i = 0; i < kN; ++i)
    if (lv[i] < floor) {
      EXPECT_EQ(dv[i], 0.0) << "floored logvar " << i << " must get no gradient";
      EXPECT_EQ(fd_lv[i], 0.0) << i;
    }
}

TEST_F(ObjectiveKernels, GaussianLogLikFixedVariance) {
  std::vector<double> mean = normals(30, kN), x = normals(31, kN, 2.0);
  const double fixed = -1.3, scale = -0.8;
  std::vector<double> ll(kB), dm(kN);
  // The floor is for learned variances only; a fixed logvar below it is used as given.
  be.gaussian_log_lik(mean.data(), nullptr, fixed, 0.0, x.data(), ll.data(), dm.data(), nullptr,
                      scale, kB, kD);
  for (int b = 0; b < kB; ++b) {
    double s = 0;
    for (int d = 0; d < kD; ++d) {
      const size_t i = size_t(b) * kD + d;
      s += -0.5 * (kLog2Pi + fixed) - (x[i] - mean[i]) * (x[i] - mean[i]) / (2 * std::exp(fixed));
    }
    EXPECT_NEAR(ll[size_t(b)], s, 1e-12 * std::max(1.0, std::abs(s))) << b;
  }
  auto f = [&] {
    std::vector<double> out(kB);
    be.gaussian_log_lik(mean.data(), nullptr, fixed, 0.0, x.data(), out.data(), nullptr, nullptr,
                        0.0, kB, kD);
    return scale * sum(out);
  };
  EXPECT_LT(rel_err(dm, central_diff(mean, f)), kTol);
}

TEST_F(ObjectiveKernels, KlStdNormalValueAndBackwardWithDimWeight) {
  std::vector<double> mu = normals(40, kN), lv = normals(41, kN, 1.2);
  std::vector<double> kl(kB), kl_dim(kD, 7.0);  // kl_dim is overwritten
  be.kl_std_normal(mu.data(), lv.data(), kl.data(), kl_dim.data(), kB, kD);
  std::vector<double> want_dim(kD, 0.0);
  for (int b = 0; b < kB; ++b) {
    double s = 0;
    for (int d = 0; d < kD; ++d) {
      const size_t i = size_t(b) * kD + d;
      // KL(N(m, s^2) || N(0, 1)) = log(1/s) + (s^2 + m^2)/2 - 1/2
      const double var = std::exp(lv[i]);
      const double t = -0.5 * std::log(var) + 0.5 * (var + mu[i] * mu[i]) - 0.5;
      s += t;
      want_dim[size_t(d)] += t;
    }
    EXPECT_NEAR(kl[size_t(b)], s, 1e-12 * std::max(1.0, s)) << b;
  }
  for (int d = 0; d < kD; ++d) EXPECT_NEAR(kl_dim[size_t(d)], want_dim[size_t(d)], 1e-12) << d;

  const std::vector<double> w = {1.0, 0.0, 0.5, 1.0, 2.0};  // includes a masked dimension
  const double scale = 0.43;
  for (const bool weighted : {false, true}) {
    SCOPED_TRACE(weighted ? "dim_weight" : "no dim_weight");
    // f = scale * sum_d w_d kl_dim[d]  (w = 1 without dim_weight)
    auto f = [&] {
      std::vector<double> k(kB), kd(kD);
      be.kl_std_normal(mu.data(), lv.data(), k.data(), kd.data(), kB, kD);
      double s = 0;
      for (int d = 0; d < kD; ++d) s += (weighted ? w[size_t(d)] : 1.0) * kd[size_t(d)];
      return scale * s;
    };
    const std::vector<double> dmu0 = normals(42, kN), dlv0 = normals(43, kN);
    std::vector<double> dmu = dmu0, dlv = dlv0;
    be.kl_std_normal_backward(mu.data(), lv.data(), weighted ? w.data() : nullptr, scale,
                              dmu.data(), dlv.data(), kB, kD);
    for (size_t i = 0; i < kN; ++i) dmu[i] -= dmu0[i], dlv[i] -= dlv0[i];
    EXPECT_LT(rel_err(dmu, central_diff(mu, f)), kTol);
    EXPECT_LT(rel_err(dlv, central_diff(lv, f)), kTol);
    if (weighted)
      for (int b = 0; b < kB; ++b) {
        EXPECT_EQ(dmu[size_t(b) * kD + 1], 0.0);
        EXPECT_EQ(dlv[size_t(b) * kD + 1], 0.0);
      }
  }
}

TEST_F(ObjectiveKernels, StdNormalLogDensityValueAndGradient) {
  std::vector<double> z = normals(50, kN, 1.7);
  const double scale = -1.9;
  const std::vector<double> dz0 = normals(51, kN);
  std::vector<double> lp(kB), dz = dz0;  // dz accumulates
  be.std_normal_log_density(z.data(), lp.data(), dz.data(), scale, kB, kD);
  for (int b = 0; b < kB; ++b) {
    double s = 0;
    for (int d = 0; d < kD; ++d) {
      const double v = z[size_t(b) * kD + d];
      s += std::log(std::exp(-v * v / 2) / std::sqrt(2 * kPi));
    }
    EXPECT_NEAR(lp[size_t(b)], s, 1e-12 * std::abs(s)) << b;
  }
  for (size_t i = 0; i < kN; ++i) dz[i] -= dz0[i];
  auto f = [&] {
    std::vector<double> out(kB);
    be.std_normal_log_density(z.data(), out.data(), nullptr, 0.0, kB, kD);
    return scale * sum(out);
  };
  EXPECT_LT(rel_err(dz, central_diff(z, f)), kTol);
}

TEST_F(ObjectiveKernels, NormalLogDensityValue) {
  const std::vector<double> z = normals(60, kN, 2.0), mu = normals(61, kN),
                            lv = normals(62, kN, 1.5);
  std::vector<double> lq(kB);
  be.normal_log_density(z.data(), mu.data(), lv.data(), lq.data(), kB, kD);
  for (int b = 0; b < kB; ++b) {
    double s = 0;
    for (int d = 0; d < kD; ++d) {
      const size_t i = size_t(b) * kD + d;
      const double sd = std::exp(lv[i] / 2), u = (z[i] - mu[i]) / sd;
      s += -std::log(sd * std::sqrt(2 * kPi)) - u * u / 2;
    }
    EXPECT_NEAR(lq[size_t(b)], s, 1e-12 * std::abs(s)) << b;
  }
}

TEST_F(ObjectiveKernels, SplitAndJoinRows) {
  constexpr int kD2 = 5;  // unequal widths: the image's channels before a feature map
  const std::vector<double> h = normals(70, size_t(kB) * (kD + kD2));
  std::vector<double> a(kN), b(size_t(kB) * kD2), b_only(b.size()), back(h.size());
  be.split_rows(h.data(), a.data(), b.data(), kB, kD, kD2);
  be.split_rows(h.data(), nullptr, b_only.data(), kB, kD, kD2);
  for (int r = 0; r < kB; ++r) {
    for (int d = 0; d < kD; ++d) EXPECT_EQ(a[size_t(r) * kD + d], h[size_t(r) * (kD + kD2) + d]);
    for (int d = 0; d < kD2; ++d)
      EXPECT_EQ(b[size_t(r) * kD2 + d], h[size_t(r) * (kD + kD2) + kD + d]);
  }
  EXPECT_EQ(b_only, b);
  be.join_rows(a.data(), b.data(), back.data(), kB, kD, kD2);
  EXPECT_EQ(back, h);
}

// ---------------------------------------------------------------- (b) analytic KL vs Monte Carlo

TEST(AnalyticKl, EqualsMonteCarloOfLogQMinusLogP) {
  ReferenceBackend<double> be;
  constexpr int kDim = 3;
  const std::vector<std::vector<double>> mus = {
      {0.0, 0.0, 0.0}, {1.5, -0.7, 0.2}, {-0.3, 2.0, 0.0}, {0.5, 0.5, -1.0}};
  const std::vector<std::vector<double>> lvs = {
      {-1.0, 0.5, 1.2}, {0.0, -2.0, 0.7}, {1.5, -0.5, -3.0}, {0.3, 0.3, 0.3}};
  constexpr int kDraws = 200000, kChunk = 10000;
  for (size_t s = 0; s < mus.size(); ++s) {
    SCOPED_TRACE("setting " + std::to_string(s));
    double kl = 0, kl_dim[kDim];
    be.kl_std_normal(mus[s].data(), lvs[s].data(), &kl, kl_dim, 1, kDim);
    std::vector<double> mu(size_t(kChunk) * kDim), lv(mu.size()), eps(mu.size()), z(mu.size());
    for (int r = 0; r < kChunk; ++r)
      for (int d = 0; d < kDim; ++d) {
        mu[size_t(r) * kDim + d] = mus[s][size_t(d)];
        lv[size_t(r) * kDim + d] = lvs[s][size_t(d)];
      }
    std::vector<double> lq(kChunk), lp(kChunk);
    double m1 = 0, m2 = 0;
    for (int c = 0; c < kDraws / kChunk; ++c) {
      normal_fill(uint64_t{99}, stream_id(rng_purpose::test, 1000 + s), uint64_t(c) * mu.size(),
                  mu.size(), eps.data());
      be.reparameterize(mu.data(), lv.data(), eps.data(), z.data(), z.size());
      be.normal_log_density(z.data(), mu.data(), lv.data(), lq.data(), kChunk, kDim);
      be.std_normal_log_density(z.data(), lp.data(), nullptr, 0.0, kChunk, kDim);
      for (int r = 0; r < kChunk; ++r) {
        const double v = lq[size_t(r)] - lp[size_t(r)];
        m1 += v;
        m2 += v * v;
      }
      if (c == 0) {  // the densities themselves, against the formulas here
        for (int r = 0; r < 3; ++r) {
          double q = 0, p = 0;
          for (int d = 0; d < kDim; ++d) {
            const size_t i = size_t(r) * kDim + d;
            const double var = std::exp(lv[i]);
            q += -0.5 * std::log(2 * kPi * var) - (z[i] - mu[i]) * (z[i] - mu[i]) / (2 * var);
            p += -0.5 * std::log(2 * kPi) - z[i] * z[i] / 2;
          }
          EXPECT_NEAR(lq[size_t(r)], q, 1e-12 * std::abs(q));
          EXPECT_NEAR(lp[size_t(r)], p, 1e-12 * std::abs(p));
        }
      }
    }
    const double mean = m1 / kDraws, var = m2 / kDraws - mean * mean;
    const double se = std::sqrt(var / kDraws);
    // Closed form, written here: sum_d (mu^2 + e^lv - lv - 1) / 2.
    double want = 0;
    for (int d = 0; d < kDim; ++d)
      want += 0.5 * (mus[s][size_t(d)] * mus[s][size_t(d)] + std::exp(lvs[s][size_t(d)]) -
                     lvs[s][size_t(d)] - 1);
    EXPECT_NEAR(kl, want, 1e-12 * std::max(1.0, want));
    EXPECT_NEAR(kl_dim[0] + kl_dim[1] + kl_dim[2], kl, 1e-12 * std::max(1.0, kl));
    EXPECT_GT(se, 0.0);
    EXPECT_LT(se, 0.02);  // enough draws that 3 SE is a sharp check
    EXPECT_NEAR(mean, kl, 3 * se) << "analytic " << kl << " Monte Carlo " << mean << " SE " << se;
  }
}

// ---------------------------------------------------------------- (c) whole-model gradients

LayerSpec lin(int64_t out) {
  LayerSpec s;
  s.type = "linear";
  s.out = out;
  return s;
}

LayerSpec act(const std::string& name) {
  LayerSpec s;
  s.type = name;
  return s;
}

struct ModelCase {
  std::string name;
  Estimator estimator;
  int samples;
  Likelihood likelihood;
  bool learned_variance;
  double beta;
  bool free_bits;
  double logvar_floor = -6.0;
  bool autoregressive = false;  // a PixelCNN decoder over the (1, 2, 3) image
};

// z -> a (2, 2, 3) feature map, the image put before it, masked A then B convs: one logit per
// pixel, each given the pixels before it.
std::vector<LayerSpec> autoregressive_decoder() {
  LayerSpec map = lin(2 * 6), reshape = act("reshape"), ar = act("autoregressive");
  reshape.shape = {2, 2, 3};
  auto masked = [](int out, const char* mask) {
    LayerSpec s = act("conv2d");
    s.out = out, s.kernel = 3, s.padding = 1, s.mask = mask;
    return s;
  };
  return {map, act("tanh"), reshape, ar, masked(3, "A"), act("tanh"), masked(1, "B")};
}

void PrintTo(const ModelCase& c, std::ostream* os) {
  *os << c.name;
}

class VaeGradient : public ::testing::TestWithParam<ModelCase> {};

TEST_P(VaeGradient, TrainStepMatchesFiniteDifferencesOfTheLoss) {
  const ModelCase& c = GetParam();
  ReferenceBackend<double> be;
  constexpr int B = 3, Lat = 2, D = 6;
  VaeSpec spec;
  spec.image = Shape{1, 2, 3};
  spec.latent = Lat;
  spec.encoder = {lin(4), act("tanh")};
  spec.decoder = {lin(4), act("tanh"), lin(c.learned_variance ? 2 * D : D)};
  if (c.autoregressive) spec.decoder = autoregressive_decoder();
  spec.likelihood.kind = c.likelihood;
  spec.likelihood.learned_variance = c.learned_variance;
  spec.likelihood.fixed_logvar = -0.4;
  spec.likelihood.logvar_floor = c.logvar_floor;
  spec.estimator = c.estimator;
  spec.samples = c.samples;
  Vae<double> vae(be, spec, B);
  vae.init(7);
  // Move every parameter off its initial value (biases start at zero) so no gradient is
  // trivially structured.
  for (Network<double>* net : {&vae.encoder(), &vae.decoder()}) {
    const size_t n = net->params().size();
    const std::vector<double> jitter = normals(300 + n, n, 0.3);
    for (size_t i = 0; i < n; ++i) net->params().values()[i] += jitter[i];
  }

  const std::vector<double> x = c.likelihood == Likelihood::bernoulli
                                    ? uniforms(200, size_t(B) * D)
                                    : normals(201, size_t(B) * D, 0.8, 0.2);
  const uint64_t keys[B] = {11, 4242, 7};
  const uint64_t seed = 31337;

  // Per-dimension KL averaged over the batch, from mu and logvar (formula written here).
  auto kl_dim_avg = [&] {
    std::vector<double> mu(size_t(B) * Lat), lv(mu.size());
    vae.encode(x.data(), B, mu.data(), lv.data());
    std::vector<double> avg(Lat, 0.0);
    for (int i = 0; i < B; ++i)
      for (int d = 0; d < Lat; ++d) {
        const size_t k = size_t(i) * Lat + d;
        avg[size_t(d)] += 0.5 * (mu[k] * mu[k] + std::exp(lv[k]) - lv[k] - 1) / B;
      }
    return avg;
  };
  double lambda = 0;
  if (c.free_bits) {
    // lambda between the two dimensions' KL, so one is masked and the other is not, both far
    // from the kink.
    const std::vector<double> avg = kl_dim_avg();
    const double lo = std::min(avg[0], avg[1]), hi = std::max(avg[0], avg[1]);
    ASSERT_GT(hi - lo, 0.02) << "the two latent dimensions need distinct KLs for this test";
    lambda = 0.5 * (lo + hi);
  }

  // The loss as a function of the current parameters, from evaluate_elbo's per-image outputs.
  auto loss = [&] {
    double elbo[B], ll[B], kl[B];
    vae.evaluate_elbo(x.data(), B, seed, keys, elbo, ll, kl);
    double l = 0;
    for (int i = 0; i < B; ++i) {
      EXPECT_NEAR(elbo[i], ll[i] - kl[i], 1e-9 * std::max(1.0, std::abs(elbo[i])));
      l -= ll[i] / B;
    }
    if (c.free_bits) {
      for (double a : kl_dim_avg()) l += c.beta * std::max(lambda, a);
    } else {
      for (int i = 0; i < B; ++i) l += c.beta * kl[i] / B;
    }
    return l;
  };

  VaeStepArgs args;
  args.seed = seed;
  args.noise_keys = keys;
  args.beta = c.beta;
  args.free_bits = lambda;
  args.global_batch = B;
  const VaeStats st = vae.train_step(x.data(), B, args);
  {  // the step's statistics are those of the same forward pass
    double elbo[B], ll[B], kl[B];
    vae.evaluate_elbo(x.data(), B, seed, keys, elbo, ll, kl);
    EXPECT_NEAR(st.elbo, elbo[0] + elbo[1] + elbo[2], 1e-10 * std::abs(st.elbo));
    EXPECT_NEAR(st.kl, kl[0] + kl[1] + kl[2], 1e-10 * std::max(1.0, std::abs(st.kl)));
    EXPECT_EQ(st.images, B);
  }

  if (c.learned_variance && c.logvar_floor > -6.0) {
    // Make sure the floor is active for some of the decoder's logvar outputs: rebuild the first
    // sample's z from the documented noise streams and run the decoder.
    std::vector<double> mu(size_t(B) * Lat), lv(mu.size()), eps(mu.size()), z(mu.size());
    vae.encode(x.data(), B, mu.data(), lv.data());
    for (int i = 0; i < B; ++i)
      normal_fill(seed, stream_id(rng_purpose::reparam_noise, keys[i]), 0, size_t(Lat),
                  eps.data() + size_t(i) * Lat);
    for (size_t k = 0; k < z.size(); ++k) z[k] = mu[k] + std::exp(lv[k] / 2) * eps[k];
    const double* out = vae.decoder().forward(z.data(), B);
    int below = 0, above = 0;
    for (int i = 0; i < B; ++i)
      for (int d = 0; d < D; ++d) {
        const double v = out[size_t(i) * 2 * D + D + d];
        (v < c.logvar_floor ? below : above) += 1;
        EXPECT_GT(std::abs(v - c.logvar_floor), 1e-3) << "too close to the floor's kink";
      }
    EXPECT_GT(below, 0);
    EXPECT_GT(above, 0);
  }

  for (Network<double>* net : {&vae.encoder(), &vae.decoder()}) {
    SCOPED_TRACE(net->name());
    ParamStore<double>& ps = net->params();
    const size_t n = ps.size();
    const std::vector<double> analytic(ps.grads(), ps.grads() + n);
    std::vector<double> fd(n);
    double* p = ps.values();
    const double h = 1e-5;
    for (size_t i = 0; i < n; ++i) {
      const double keep = p[i];
      p[i] = keep + h;
      const double up = loss();
      p[i] = keep - h;
      const double down = loss();
      p[i] = keep;
      fd[i] = (up - down) / (2 * h);
    }
    double gmax = 0;
    for (double g : fd) gmax = std::max(gmax, std::abs(g));
    EXPECT_GT(gmax, 1e-3) << "gradient unexpectedly vanishing";
    const double err = rel_err(analytic, fd);
    EXPECT_LT(err, 1e-6) << "max|analytic - fd| / max|fd| over " << n << " parameters";
    if (err >= 1e-6)
      for (size_t i = 0; i < n; ++i)
        if (std::abs(analytic[i] - fd[i]) > 1e-6 * gmax)
          ADD_FAILURE() << "param " << i << ": analytic " << analytic[i] << " fd " << fd[i];
  }
}

INSTANTIATE_TEST_SUITE_P(
    Objectives, VaeGradient,
    ::testing::Values(ModelCase{"B_L1_bernoulli_beta07", Estimator::B, 1, Likelihood::bernoulli,
                                false, 0.7, false},
                      ModelCase{"B_L2_bernoulli_beta13", Estimator::B, 2, Likelihood::bernoulli,
                                false, 1.3, false},
                      ModelCase{"B_L1_gaussian_learned_beta05", Estimator::B, 1,
                                Likelihood::gaussian, true, 0.5, false},
                      ModelCase{"B_L2_gaussian_learned_floor", Estimator::B, 2,
                                Likelihood::gaussian, true, 1.7, false, 0.0},
                      ModelCase{"B_L1_gaussian_fixed", Estimator::B, 1, Likelihood::gaussian, false,
                                0.9, false},
                      ModelCase{"A_L1_bernoulli_beta07", Estimator::A, 1, Likelihood::bernoulli,
                                false, 0.7, false},
                      ModelCase{"A_L2_bernoulli_beta15", Estimator::A, 2, Likelihood::bernoulli,
                                false, 1.5, false},
                      ModelCase{"A_L1_gaussian_learned_beta08", Estimator::A, 1,
                                Likelihood::gaussian, true, 0.8, false},
                      ModelCase{"A_L2_gaussian_learned_beta12", Estimator::A, 2,
                                Likelihood::gaussian, true, 1.2, false},
                      ModelCase{"B_L1_bernoulli_freebits", Estimator::B, 1, Likelihood::bernoulli,
                                false, 0.8, true},
                      ModelCase{"B_L2_gaussian_learned_freebits", Estimator::B, 2,
                                Likelihood::gaussian, true, 1.4, true},
                      ModelCase{"B_L2_bernoulli_autoregressive", Estimator::B, 2,
                                Likelihood::bernoulli, false, 0.9, false, -6.0, true},
                      ModelCase{"A_L1_bernoulli_autoregressive", Estimator::A, 1,
                                Likelihood::bernoulli, false, 1.1, false, -6.0, true},
                      ModelCase{"B_L1_bernoulli_autoregressive_freebits", Estimator::B, 1,
                                Likelihood::bernoulli, false, 0.8, true, -6.0, true}),
    [](const ::testing::TestParamInfo<ModelCase>& i) { return i.param.name; });

// Free bits across ranks: the per-dimension KL goes through allreduce_sum and is averaged over
// global_batch. A fake R-rank reduction (this rank's sums times R, global batch R B) must give
// the same mask and gradients as one rank with batch B; a reduction that makes every dimension's
// average exceed lambda must unmask them all.
TEST(VaeFreeBits, UsesTheAllReducedGlobalAverage) {
  ReferenceBackend<double> be;
  constexpr int B = 3, Lat = 2, D = 6;
  VaeSpec spec;
  spec.image = Shape{1, 2, 3};
  spec.latent = Lat;
  spec.encoder = {lin(4), act("tanh")};
  spec.decoder = {lin(4), act("tanh"), lin(D)};
  Vae<double> vae(be, spec, B);
  vae.init(3);
  for (Network<double>* net : {&vae.encoder(), &vae.decoder()}) {
    const size_t n = net->params().size();
    const std::vector<double> jitter = normals(400 + n, n, 0.3);
    for (size_t i = 0; i < n; ++i) net->params().values()[i] += jitter[i];
  }
  const std::vector<double> x = uniforms(210, size_t(B) * D);
  const uint64_t keys[B] = {1, 2, 3};
  auto grads = [&](double lambda, int64_t global, std::function<void(double*, size_t)> reduce) {
    VaeStepArgs a;
    a.seed = 5;
    a.noise_keys = keys;
    a.free_bits = lambda;
    a.global_batch = global;
    a.allreduce_sum = std::move(reduce);
    vae.train_step(x.data(), B, a);
    const ParamStore<double>& ps = vae.encoder().params();
    return std::vector<double>(ps.grads(), ps.grads() + ps.size());
  };
  std::vector<double> mu(size_t(B) * Lat), lv(mu.size());
  vae.encode(x.data(), B, mu.data(), lv.data());
  double avg[Lat] = {0, 0};
  for (size_t k = 0; k < mu.size(); ++k)
    avg[k % Lat] += 0.5 * (mu[k] * mu[k] + std::exp(lv[k]) - lv[k] - 1) / B;
  const double lambda = 0.5 * (avg[0] + avg[1]);
  ASSERT_GT(std::abs(avg[0] - avg[1]), 0.02);

  const std::vector<double> one = grads(lambda, B, nullptr);
  // R ranks holding the same images: sums R times this rank's, global batch R B, same averages.
  // R is large enough that dividing the reduced sums by the local batch instead would lift the
  // smaller dimension's average above lambda and so change the mask.
  const double lo = std::min(avg[0], avg[1]), hi = std::max(avg[0], avg[1]);
  ASSERT_GT(lo, 0.0);
  const int ranks = int(std::ceil(hi / lo)) + 1;
  const std::vector<double> many = grads(lambda, int64_t(ranks) * B, [ranks](double* v, size_t n) {
    for (size_t i = 0; i < n; ++i) v[i] *= ranks;
  });
  EXPECT_LT(rel_err(many, one), 1e-12);
  const std::vector<double> none = grads(0.0, B, nullptr);  // no free bits: nothing masked
  const std::vector<double> big = grads(lambda, B, [](double* v, size_t n) {
    for (size_t i = 0; i < n; ++i) v[i] += 1e3;  // other ranks' KL pushes every average up
  });
  EXPECT_LT(rel_err(big, none), 1e-12);
  EXPECT_GT(rel_err(one, none), 1e-3);  // the mask does change the gradient
}

// Free bits: a dimension gets the KL gradient only when its global-batch average exceeds lambda
// (equal is "at the floor": no gradient), and the smallest average is reported.
TEST(FreeBits, WeightsAreOneAboveLambdaAndZeroAtOrBelow) {
  const double mean[5] = {0.5, 0.25, 0.2500001, 2.0, 0.0};
  float w[5];
  EXPECT_DOUBLE_EQ(free_bits_weights(mean, 0.25, 5, w), 0.0);
  const float want[5] = {1, 0, 1, 1, 0};
  for (int d = 0; d < 5; ++d) EXPECT_EQ(w[d], want[d]) << "dimension " << d;
}

// KL warm-up counted in fractional epochs: linear up to warmup_epochs, then beta.
TEST(KlWarmup, LinearInEpochsThenBeta) {
  EXPECT_DOUBLE_EQ(kl_warmup_beta(2.0, 10, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(kl_warmup_beta(2.0, 10, 2.5), 0.5);
  EXPECT_DOUBLE_EQ(kl_warmup_beta(2.0, 10, 10.0), 2.0);
  EXPECT_DOUBLE_EQ(kl_warmup_beta(2.0, 10, 37.0), 2.0);
  EXPECT_DOUBLE_EQ(kl_warmup_beta(2.0, 0, 0.0), 2.0);  // no warm-up
}

}  // namespace
}  // namespace distvae
