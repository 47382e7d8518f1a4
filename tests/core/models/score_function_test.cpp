// The score-function (REINFORCE) encoder gradient is an unbiased estimate of the same gradient the
// reparameterized estimator gives: their means over many draws agree within standard errors.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/backends/reference.h"
#include "core/models/vae.h"
#include "tests/layer_spec.h"

namespace distvae {
namespace {

TEST(ScoreFunction, UnbiasedAgainstReparameterization) {
  ReferenceBackend<double> be;
  VaeSpec spec;
  spec.image = Shape{1, 2, 3};
  spec.latent = 2;
  spec.encoder = {layer("linear", 4), layer("tanh")};
  spec.decoder = {layer("linear", 4), layer("tanh"), layer("linear", 6)};
  spec.estimator = Estimator::A;
  const int B = 3, draws = 40000;
  Vae<double> vae(be, spec, B);
  vae.init(5);
  const std::vector<double> x = {1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 1, 0, 0, 1};
  ParamStore<double>& ps = vae.encoder().params();
  const size_t n = ps.size();
  std::vector<double> mean_r(n, 0), mean_s(n, 0), sq_s(n, 0);
  std::vector<uint64_t> keys(B);
  for (int s = 0; s < draws; ++s) {
    for (int b = 0; b < B; ++b) keys[size_t(b)] = uint64_t(s) * B + uint64_t(b);
    VaeStepArgs a;
    a.seed = 3, a.noise_keys = keys.data();
    vae.train_step(x.data(), B, a);
    for (size_t i = 0; i < n; ++i) mean_r[i] += ps.grads()[i] / draws;
    vae.score_function_encoder_grad(x.data(), B, 3, keys.data());
    for (size_t i = 0; i < n; ++i) {
      mean_s[i] += ps.grads()[i] / draws;
      sq_s[i] += ps.grads()[i] * ps.grads()[i] / draws;
    }
  }
  int checked = 0;
  for (size_t i = 0; i < n; ++i) {
    const double se = std::sqrt((sq_s[i] - mean_s[i] * mean_s[i]) / draws);
    EXPECT_LT(std::abs(mean_s[i] - mean_r[i]), 5 * se + 1e-9) << "parameter " << i;
    ++checked;
  }
  EXPECT_EQ(checked, int(n));
}

TEST(ScoreFunction, RequiresEstimatorA) {
  ReferenceBackend<double> be;
  VaeSpec spec;
  spec.image = Shape{1, 1, 2};
  spec.latent = 1;
  spec.decoder = {layer("linear", 2)};
  Vae<double> vae(be, spec, 1);
  const double x[2] = {1, 0};
  const uint64_t key = 0;
  EXPECT_THROW(vae.score_function_encoder_grad(x, 1, 0, &key), std::invalid_argument);
}

}  // namespace
}  // namespace distvae
