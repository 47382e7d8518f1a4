// The discriminator learns the log density ratio (docs/design.md section 8): trained on samples of
// q = N(m, s^2 I) against p = N(0, I) with per-class means, T(z) approaches the analytic
// log q(z)/p(z) = sum_d [-log s - (z_d - m)^2 / (2 s^2) + z_d^2 / 2], measured over samples of q.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/models/discriminator.h"
#include "core/optim.h"
#include "core/rng.h"
#include "tests/layer_spec.h"

namespace distvae {
namespace {

struct RatioResult {
  double mae = 0;           // mean |T - log q/p| over fresh q samples
  double constant_mae = 0;  // the same for the best constant (the median of log q/p)
};

RatioResult fit_ratio(int dims, double m, double s, int hidden, int steps) {
  auto be = make_backend("dnnl");
  const int B = 512;
  Discriminator<float> disc(*be, "T", Shape{dims},
                            {layer("linear", hidden), layer("elu"), layer("linear", hidden),
                             layer("elu"), layer("linear", 1)},
                            B);
  disc.net().init(21);
  OptimizerConfig oc;
  oc.lr = 1e-3;
  ParamStore<float>& ps = disc.net().params();
  OptimizerStateOwner<float> state(*be, oc, ps.size());
  std::vector<float> q(size_t(B) * dims), p(q.size());
  auto draw_q = [&](uint64_t stream) {
    normal_fill(3, stream_id(rng_purpose::test, stream), 0, q.size(), q.data());
    for (float& v : q) v = float(m + s * v);
  };
  for (int t = 0; t < steps; ++t) {
    draw_q(2 * uint64_t(t));
    normal_fill(3, stream_id(rng_purpose::test, 2 * uint64_t(t) + 1), 0, p.size(), p.data());
    disc.loss_and_grad(q.data(), p.data(), B);
    // A rate decaying linearly to zero, so the fit's final state is not one noisy step.
    optimizer_step(*be, oc, state.state(), ps.values(), ps.grads(), ps.size(),
                   1e-3 * (1.0 - double(t) / steps));
  }
  RatioResult r;
  std::vector<double> t(static_cast<size_t>(B)), exact, err;
  for (int rep = 0; rep < 8; ++rep) {
    draw_q(uint64_t(1) << 40 | uint64_t(rep));  // samples the fit never saw
    disc.output_and_input_grad(q.data(), B, DiscOutput::logit, 0.0f, nullptr, t.data());
    for (int b = 0; b < B; ++b) {
      double lr = 0;
      for (int d = 0; d < dims; ++d) {
        const double z = q[size_t(b) * dims + d];
        lr += -std::log(s) - (z - m) * (z - m) / (2 * s * s) + z * z / 2;
      }
      exact.push_back(lr);
      err.push_back(std::abs(t[size_t(b)] - lr));
    }
  }
  for (double e : err) r.mae += e / double(err.size());
  std::vector<double> sorted = exact;
  std::nth_element(sorted.begin(), sorted.begin() + long(sorted.size() / 2), sorted.end());
  const double median = sorted[sorted.size() / 2];
  for (double e : exact) r.constant_mae += std::abs(e - median) / double(exact.size());
  return r;
}

TEST(DensityRatio, TwoDimensions) {
  const RatioResult r = fit_ratio(2, 1.0, 0.5, 128, 4000);
  RecordProperty("mae", std::to_string(r.mae));
  std::printf("2-d: mean |T - log q/p| = %.4f (best constant %.4f)\n", r.mae, r.constant_mae);
  EXPECT_LE(r.mae, 0.1);
}

TEST(DensityRatio, SixteenDimensions) {
  const RatioResult r = fit_ratio(16, 0.5, 0.7, 128, 4000);
  std::printf("16-d: mean |T - log q/p| = %.4f, best constant %.4f (ratio %.3f)\n", r.mae,
              r.constant_mae, r.mae / r.constant_mae);
  EXPECT_LE(r.mae, 0.25);
  EXPECT_LE(r.mae, 0.15 * r.constant_mae);
}

}  // namespace
}  // namespace distvae
