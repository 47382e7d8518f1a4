// Known answers on probabilistic PCA (the closed forms and the model: ppca_model.h), a Vae<double>
// whose encoder is a single linear map and whose decoder is W, b with a fixed-variance Gaussian
// likelihood set to them:
//  (a) orthogonal W: the exact posterior is diagonal, so estimator A's one-sample ELBO equals
//      log p(x) for every noise draw, and the importance-weighted bound is exact for any K;
//  (b) correlated W: the best diagonal encoder's ELBO (closed form) is strictly below log p(x),
//      the model's estimator-B ELBO averages to it, and the importance-weighted bound at K = 5000
//      closes the gap;
//  (c) perturbed encoders have closed-form ELBOs strictly below log p(x), below the best diagonal
//      one, and the model's average ELBO agrees with each.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "tests/core/models/ppca_model.h"

namespace distvae {
namespace {

using namespace ppca;  // NOLINT: the model's names, as if defined here

// Mean and standard error of the model's estimator ELBO for one x over n noise draws (rows of a
// batch replicating x, distinct noise keys, several seeds); also checks the per-image KL of
// estimator B against the closed form when given.
struct Average {
  double mean, se;
};

Average average_elbo(Vae<double>& vae, const std::vector<double>& x, int batches,
                     double analytic_kl = -1) {
  std::vector<double> xs(size_t(kMaxBatch) * D);
  for (int r = 0; r < kMaxBatch; ++r) std::copy(x.begin(), x.end(), xs.begin() + size_t(r) * D);
  std::vector<uint64_t> keys(kMaxBatch);
  for (int r = 0; r < kMaxBatch; ++r) keys[size_t(r)] = uint64_t(r);
  std::vector<double> elbo(kMaxBatch), ll(kMaxBatch), kl(kMaxBatch);
  double m1 = 0, m2 = 0;
  for (int t = 0; t < batches; ++t) {
    vae.evaluate_elbo(xs.data(), kMaxBatch, uint64_t(1000 + t), keys.data(), elbo.data(), ll.data(),
                      kl.data());
    for (double v : elbo) m1 += v, m2 += v * v;
    if (analytic_kl >= 0) {
      EXPECT_NEAR(kl[0], analytic_kl, 1e-10 * std::max(1.0, analytic_kl));
    }
  }
  const double n = double(batches) * kMaxBatch;
  const double mean = m1 / n;
  return {mean, std::sqrt(std::max(0.0, m2 / n - mean * mean) / n)};
}

double kl_to_prior(const std::vector<double>& m, const std::vector<double>& v) {
  double s = 0;
  for (int j = 0; j < K; ++j)
    s += 0.5 * (m[size_t(j)] * m[size_t(j)] + v[size_t(j)] - std::log(v[size_t(j)]) - 1);
  return s;
}

// ---------------------------------------------------------------- tests

TEST(Ppca, TestFormulasAgree) {
  // The direct ELBO and log p(x) - KL(q || posterior) are two routes to the same number.
  for (double c : {0.0, 0.5}) {
    const Ppca p = make_ppca(c);
    const DiagEncoder e = optimal_diag(p);
    for (uint64_t key : {1, 2, 3}) {
      const std::vector<double> x = p.sample(key);
      const std::vector<double> m = e.mean(p, x);
      const std::vector<double> v = {e.var[0] * 1.7, e.var[1] * 0.6};
      const std::vector<double> ms = {m[0] + 0.3, m[1] - 0.2};
      for (const auto& [mq, vq] : {std::pair{m, e.var}, std::pair{ms, v}})
        EXPECT_NEAR(p.elbo(x, mq, vq), p.log_px(x) - p.kl_to_posterior(x, mq, vq), 1e-10);
    }
  }
}

TEST(Ppca, ExactDiagonalPosteriorMakesEstimatorAExact) {
  const Ppca p = make_ppca(0.0);
  const Mat mm = p.m();
  ASSERT_NEAR(mm[1], 0.0, 1e-12) << "orthogonal columns: M is diagonal";
  ReferenceBackend<double> be;
  std::unique_ptr<Vae<double>> vae = make_vae(be, Estimator::A);
  const DiagEncoder e = optimal_diag(p);
  set_model(*vae, p, e);

  constexpr int B = 8;
  std::vector<double> xs(size_t(B) * D), logp(B);
  uint64_t keys[B];
  for (int i = 0; i < B; ++i) {
    const std::vector<double> x = p.sample(uint64_t(10 + i));
    std::copy(x.begin(), x.end(), xs.begin() + size_t(i) * D);
    logp[size_t(i)] = p.log_px(x);
    keys[i] = uint64_t(100 + i);
    // The encoder computes the exact posterior.
    std::vector<double> mu(K), lv(K);
    vae->encode(x.data(), 1, mu.data(), lv.data());
    const std::vector<double> want = p.posterior_mean(x);
    for (int j = 0; j < K; ++j) {
      EXPECT_NEAR(mu[size_t(j)], want[size_t(j)], 1e-12);
      EXPECT_NEAR(std::exp(lv[size_t(j)]), kS2 / mm[size_t(j) * K + j], 1e-12);
    }
  }
  double spread = 0;  // the estimator's terms do vary with the draw; their sum must not
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    double elbo[B], ll[B], kl[B];
    vae->evaluate_elbo(xs.data(), B, seed, keys, elbo, ll, kl);
    for (int i = 0; i < B; ++i) {
      EXPECT_NEAR(elbo[i], logp[size_t(i)], 1e-6) << "image " << i << " seed " << seed;
      spread = std::max(spread, std::abs(ll[i] - logp[size_t(i)]));
    }
  }
  EXPECT_GT(spread, 0.1);
  // Every importance weight is p(x) exactly, so the bound is exact at any K.
  for (int i = 0; i < 3; ++i)
    for (int k : {1, 10, 1500})
      EXPECT_NEAR(vae->iw_log_likelihood(xs.data() + size_t(i) * D, k, 9, uint64_t(i)),
                  logp[size_t(i)], 1e-6)
          << "K " << k;
}

TEST(Ppca, BestDiagonalEncoderHasAGapThatImportanceWeightingCloses) {
  const Ppca p = make_ppca(0.5);
  const Mat mm = p.m();
  const double rho = mm[1] / std::sqrt(mm[0] * mm[3]);
  // Importance weights p/q have finite variance only if 2 P_post - P_q > 0, i.e. rho < 1/2 here;
  // beyond that K = 5000 would converge slowly.
  ASSERT_GT(rho, 0.3);
  ASSERT_LT(rho, 0.5);
  ReferenceBackend<double> be;
  std::unique_ptr<Vae<double>> vae = make_vae(be, Estimator::B);
  const DiagEncoder e = optimal_diag(p);
  set_model(*vae, p, e);

  for (uint64_t key : {21, 22, 23}) {
    SCOPED_TRACE("x " + std::to_string(key));
    const std::vector<double> x = p.sample(key);
    const double logp = p.log_px(x);
    const std::vector<double> m = e.mean(p, x);
    const double best = p.elbo(x, m, e.var);
    // The gap of the best mean-field Gaussian: (sum_j log M_jj - log det M) / 2, whatever x.
    const double gap =
        0.5 * (std::log(mm[0]) + std::log(mm[3]) - std::log(mm[0] * mm[3] - mm[1] * mm[2]));
    EXPECT_NEAR(logp - best, gap, 1e-10);
    EXPECT_GE(logp - best, 0.05);
    // The mean-field optimum: no small change of the mean or variances raises the ELBO.
    for (int j = 0; j < K; ++j)
      for (double h : {-1e-3, 1e-3}) {
        std::vector<double> m2 = m, v2 = e.var;
        m2[size_t(j)] += h;
        EXPECT_LT(p.elbo(x, m2, e.var), best);
        v2[size_t(j)] *= 1 + h;
        EXPECT_LT(p.elbo(x, m, v2), best);
      }

    const Average avg = average_elbo(*vae, x, 20, kl_to_prior(m, e.var));
    EXPECT_LT(avg.se, 0.01);
    EXPECT_NEAR(avg.mean, best, 4 * avg.se) << "log p(x) " << logp;

    const double iw = vae->iw_log_likelihood(x.data(), 5000, 4, key);
    EXPECT_NEAR(iw, logp, 0.05) << "best diagonal ELBO " << best;
  }
}

TEST(Ppca, PerturbedEncodersFallBelow) {
  for (double c : {0.0, 0.5}) {
    SCOPED_TRACE("c " + std::to_string(c));
    const Ppca p = make_ppca(c);
    const DiagEncoder best_e = optimal_diag(p);
    ReferenceBackend<double> be;
    std::unique_ptr<Vae<double>> vae = make_vae(be, Estimator::B);
    const std::vector<double> x = p.sample(31);
    const double logp = p.log_px(x);
    const double best = p.elbo(x, best_e.mean(p, x), best_e.var);

    std::vector<DiagEncoder> perturbed;
    for (const std::vector<double>& shift :
         {std::vector<double>{0.4, 0.0}, std::vector<double>{-0.2, 0.3}}) {
      DiagEncoder e = best_e;
      e.shift = shift;
      perturbed.push_back(e);
    }
    for (const std::vector<double>& s :
         {std::vector<double>{2.0, 1.0}, std::vector<double>{0.5, 0.7}}) {
      DiagEncoder e = best_e;
      for (int j = 0; j < K; ++j) e.var[size_t(j)] *= s[size_t(j)];
      perturbed.push_back(e);
    }
    {  // both at once, and a mean map that ignores part of x
      DiagEncoder e = best_e;
      e.shift = {0.1, -0.1};
      e.var[0] *= 1.3;
      for (int d = 0; d < D; d += 2) e.a[size_t(d)] = 0.0;
      perturbed.push_back(e);
    }
    for (size_t i = 0; i < perturbed.size(); ++i) {
      SCOPED_TRACE("perturbation " + std::to_string(i));
      const DiagEncoder& e = perturbed[i];
      const std::vector<double> m = e.mean(p, x);
      const double closed = p.elbo(x, m, e.var);
      EXPECT_LT(closed, logp - 1e-3);
      EXPECT_LT(closed, best - 1e-3);
      set_model(*vae, p, e);
      const Average avg = average_elbo(*vae, x, 10, kl_to_prior(m, e.var));
      EXPECT_NEAR(avg.mean, closed, 4 * avg.se);
      EXPECT_LT(avg.mean, logp);
    }
  }
}

}  // namespace
}  // namespace distvae
