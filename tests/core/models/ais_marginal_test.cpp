// AIS for log p(x) against the linear-Gaussian model's exact marginal (ppca_model.h): the forward
// estimate within 0.05 nats per image, bidirectional Monte Carlo's bounds bracketing the exact
// value on data simulated from the model (reverse chains from the z that made each x), and chains
// that do not depend on how the images are split (over ranks).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "core/models/ais.h"
#include "tests/core/models/ppca_model.h"

namespace distvae {
namespace {

using namespace ppca;  // NOLINT: the model's names, as if defined here

// Correlated columns (c = 0.7), so that the posterior is not diagonal.
struct Fixture {
  ReferenceBackend<double> be;
  Ppca model = make_ppca(0.7);
  std::unique_ptr<Vae<double>> vae = make_vae(be, Estimator::B);
  Fixture() { set_model(*vae, model, optimal_diag(model)); }
};

// n images simulated from the model, and the z that made each: x = W z + b + sqrt(s2) e.
void simulate(const Ppca& p, int n, std::vector<double>& x, std::vector<double>& z) {
  x.assign(size_t(n) * D, 0.0), z.assign(size_t(n) * K, 0.0);
  std::vector<double> e(D);
  for (int i = 0; i < n; ++i) {
    normal_fill(11, stream_id(rng_purpose::test, uint64_t(i)), 0, K, z.data() + size_t(i) * K);
    normal_fill(11, stream_id(rng_purpose::test, uint64_t(i)), 16, D, e.data());
    for (int d = 0; d < D; ++d) {
      double v = p.b[size_t(d)] + std::sqrt(kS2) * e[size_t(d)];
      for (int j = 0; j < K; ++j) v += p.wcol(d, j) * z[size_t(i) * K + j];
      x[size_t(i) * D + d] = v;
    }
  }
}

// Image i's estimate from its chains' weights: log mean exp.
LogNormalizer image_estimate(const AisChains& a, int i, int chains) {
  return log_normalizer(std::vector<double>(a.log_w.begin() + long(i) * chains,
                                            a.log_w.begin() + long(i + 1) * chains));
}

AisOptions options() {
  AisOptions o;
  o.chains = 64, o.temperatures = 2000, o.leapfrog = 5, o.step_size = 0.1, o.seed = 7;
  return o;
}

TEST(AisMarginal, RecoversTheExactLogLikelihood) {
  Fixture f;
  const int n = 6;
  std::vector<double> x, z;
  simulate(f.model, n, x, z);
  const AisOptions o = options();
  const AisChains a = ais_marginal(*f.vae, x.data(), n, o);
  EXPECT_GT(a.acceptance, 0.4);
  for (int i = 0; i < n; ++i) {
    const std::vector<double> xi(x.begin() + long(i) * D, x.begin() + long(i + 1) * D);
    const double exact = f.model.log_px(xi);
    const LogNormalizer est = image_estimate(a, i, o.chains);
    std::printf("image %d: log p(x) exact %.4f  AIS %.4f +- %.4f  ESS %.1f of %d\n", i, exact,
                est.log_z, est.std_error, est.ess, o.chains);
    EXPECT_NEAR(est.log_z, exact, 0.05) << "image " << i;
  }
}

// BDMC at a schedule length on the mean log p(x) of the simulated images: the bounds and their
// standard errors (the per-image delta-method errors, combined over the images).
struct Bounds {
  double lower = 0, upper = 0, lower_se = 0, upper_se = 0;
};
Bounds bdmc(Fixture& f, const std::vector<double>& x, const std::vector<double>& z, int n,
            int temperatures) {
  AisOptions o = options();
  o.temperatures = temperatures;
  const AisChains fwd = ais_marginal(*f.vae, x.data(), n, o);
  std::vector<double> start(size_t(n) * o.chains * K);  // every chain of image i starts at z_i
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < o.chains; ++c)
      for (int j = 0; j < K; ++j) start[(size_t(i) * o.chains + c) * K + j] = z[size_t(i) * K + j];
  const AisChains rev = ais_marginal(*f.vae, x.data(), n, o, start.data());
  Bounds r;
  for (int i = 0; i < n; ++i) {
    const LogNormalizer lo = image_estimate(fwd, i, o.chains),
                        up = image_estimate(rev, i, o.chains);
    r.lower += lo.log_z / n, r.lower_se += lo.std_error * lo.std_error / (double(n) * n);
    r.upper -= up.log_z / n, r.upper_se += up.std_error * up.std_error / (double(n) * n);
  }  // upper: E[w_rev] = 1 / p(x)
  r.lower_se = std::sqrt(r.lower_se), r.upper_se = std::sqrt(r.upper_se);
  return r;
}

TEST(AisMarginal, BidirectionalBoundsBracketTheExactValueAndCloseWithALongerSchedule) {
  Fixture f;
  const int n = 6;
  std::vector<double> x, z;
  simulate(f.model, n, x, z);
  double exact = 0;
  for (int i = 0; i < n; ++i)
    exact +=
        f.model.log_px(std::vector<double>(x.begin() + long(i) * D, x.begin() + long(i + 1) * D)) /
        n;
  // The bounds hold in expectation; one estimate may cross by its noise (3 standard errors).
  std::vector<double> gaps;
  for (int t : {10, 1000}) {
    const Bounds b = bdmc(f, x, z, n, t);
    std::printf("%4d temperatures: exact %.4f  BDMC lower %.4f +- %.4f  upper %.4f +- %.4f\n", t,
                exact, b.lower, b.lower_se, b.upper, b.upper_se);
    EXPECT_LE(b.lower, exact + 3 * b.lower_se + 0.005) << t << " temperatures";
    EXPECT_GE(b.upper, exact - 3 * b.upper_se - 0.005) << t << " temperatures";
    gaps.push_back(b.upper - b.lower);
  }
  EXPECT_GT(gaps[0], 0.1) << "a 10-step schedule should leave the bounds apart";
  EXPECT_LT(std::abs(gaps[1]), 0.05) << "1000 steps should close the gap";
}

TEST(AisMarginal, ChainsDoNotDependOnTheSplit) {
  Fixture f;
  const int n = 4;
  std::vector<double> x, z;
  simulate(f.model, n, x, z);
  AisOptions o = options();
  o.temperatures = 20;
  const AisChains all = ais_marginal(*f.vae, x.data(), n, o);
  AisOptions second = o;
  second.first_chain = uint64_t(2) * o.chains;  // images 2 and 3 on another rank
  const AisChains a = ais_marginal(*f.vae, x.data(), 2, o);
  const AisChains b = ais_marginal(*f.vae, x.data() + 2 * D, 2, second);
  std::vector<double> joined = a.log_w;
  joined.insert(joined.end(), b.log_w.begin(), b.log_w.end());
  EXPECT_EQ(joined, all.log_w);
}

}  // namespace
}  // namespace distvae
