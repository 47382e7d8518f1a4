// Annealed importance sampling against known normalizers: a linear T(z) = w.z + b has
// Z = E_N(0,I)[exp T] = exp(b + |w|^2 / 2) exactly; a small nonlinear T in 2 dimensions against
// plain Monte Carlo with a million draws (accurate there: the tails are mild). The chains do not
// depend on how they are split (over ranks).
#include "core/models/ais.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/backends/reference.h"
#include "core/rng.h"
#include "tests/layer_spec.h"

namespace distvae {
namespace {

TEST(Ais, LinearLogRatioHasTheAnalyticNormalizer) {
  ReferenceBackend<double> be;
  const int L = 8;
  Discriminator<double> t(be, "T", Shape{L}, {layer("linear", 1)}, 64);
  ParamStore<double>& ps = t.net().params();
  double w2 = 0;
  for (int d = 0; d < L; ++d) {  // weights first, then the bias (slice order)
    ps.values()[d] = 1.2 * std::cos(double(d));
    w2 += ps.values()[d] * ps.values()[d];
  }
  ps.values()[L] = -0.3;
  const double exact = -0.3 + 0.5 * w2;
  // Plain Monte Carlo is fine here for comparison, but AIS must get it from its own weights.
  AisOptions o;
  o.chains = 128, o.temperatures = 300, o.leapfrog = 5, o.seed = 3;
  const AisChains a = ais_chains(t, L, o);
  const LogNormalizer z = log_normalizer(a.log_w);
  std::printf("log Z exact %.4f  AIS %.4f +- %.4f  ESS %.1f of %lld  acceptance %.2f\n", exact,
              z.log_z, z.std_error, z.ess, (long long)z.n, a.acceptance);
  EXPECT_NEAR(z.log_z, exact, std::max(3 * z.std_error, 0.01));
  EXPECT_GT(z.ess, 0.5 * o.chains);
  EXPECT_GT(a.acceptance, 0.4);
  // The final states follow p exp(T) / Z = N(w, I): their mean is w.
  for (int d = 0; d < L; ++d) {
    double m = 0;
    for (int c = 0; c < o.chains; ++c) m += a.z[size_t(c) * L + d] / o.chains;
    EXPECT_NEAR(m, ps.values()[d], 4.0 / std::sqrt(double(o.chains))) << "dimension " << d;
  }
}

TEST(Ais, NonlinearTwoDimensionsAgreesWithPlainMonteCarlo) {
  ReferenceBackend<double> be;
  const int L = 2;
  Discriminator<double> t(be, "T", Shape{L},
                          {layer("linear", 16), layer("tanh"), layer("linear", 1)}, 256);
  t.net().init(5);
  ParamStore<double>& ps = t.net().params();
  for (size_t i = 0; i < ps.size(); ++i) ps.values()[i] *= 1.5;  // a ratio worth annealing
  // Plain Monte Carlo: 2^20 draws of N(0, I).
  const int n = 1 << 20, chunk = 512;
  std::vector<double> z(size_t(chunk) * L), tv(chunk), lw;
  lw.reserve(n);
  for (int c = 0; c < n / chunk; ++c) {
    normal_fill(9, stream_id(rng_purpose::test, uint64_t(c)), 0, z.size(), z.data());
    t.output_and_input_grad(z.data(), chunk, DiscOutput::logit, 0.0, nullptr, tv.data());
    lw.insert(lw.end(), tv.begin(), tv.end());
  }
  const LogNormalizer mc = log_normalizer(lw);
  AisOptions o;
  o.chains = 256, o.temperatures = 200, o.leapfrog = 5, o.seed = 4;
  const LogNormalizer ais = log_normalizer(ais_chains(t, L, o).log_w);
  std::printf("log Z plain MC %.4f +- %.4f (ESS %.0f)  AIS %.4f +- %.4f (ESS %.1f of %d)\n",
              mc.log_z, mc.std_error, mc.ess, ais.log_z, ais.std_error, ais.ess, o.chains);
  EXPECT_GT(std::abs(mc.log_z), 0.2) << "the test needs a normalizer far from 1";
  EXPECT_NEAR(ais.log_z, mc.log_z, 3 * std::hypot(ais.std_error, mc.std_error) + 0.01);
}

TEST(Ais, ChainsDoNotDependOnTheSplit) {
  ReferenceBackend<double> be;
  const int L = 3;
  Discriminator<double> t(be, "T", Shape{L}, {layer("linear", 8), layer("elu"), layer("linear", 1)},
                          16);
  t.net().init(2);
  AisOptions o;
  o.chains = 40, o.temperatures = 50, o.seed = 8;
  const AisChains all = ais_chains(t, L, o);  // chunks of 32 (the network's batch) and 8
  AisOptions a = o, b = o;
  a.chains = 13;
  b.chains = 27, b.first_chain = 13;
  const AisChains ra = ais_chains(t, L, a), rb = ais_chains(t, L, b);
  for (int c = 0; c < o.chains; ++c) {
    const double w = c < 13 ? ra.log_w[size_t(c)] : rb.log_w[size_t(c - 13)];
    EXPECT_EQ(w, all.log_w[size_t(c)]) << "chain " << c;
  }
}

}  // namespace
}  // namespace distvae
