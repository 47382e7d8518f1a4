// Tests for core/optim.h: Adam, AdamW, SGD (plain, momentum, weight decay) and gradient clipping
// against the formulas written out here in double, on the reference backend.
#include "core/optim.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <utility>
#include <vector>

#include "core/backends/reference.h"

namespace distvae {
namespace {

using Vec = std::array<double, 3>;

const Vec kP0 = {0.5, -1.0, 2.0};
// Three steps of gradients; the sign changes exercise the moment averages.
const std::array<Vec, 3> kGrads = {Vec{0.1, -0.2, 0.3}, Vec{-0.4, 0.5, 0.05}, Vec{0.2, 0.2, -1.0}};
constexpr double kTol = 1e-13;

// Runs `steps` optimizer steps on a fresh 3-element problem; returns the parameters after each.
std::vector<Vec> run(const OptimizerConfig& cfg, double lr, int steps) {
  ReferenceBackend<double> be;
  OptimizerStateOwner<double> owner(be, cfg, 3);
  Vec p = kP0;
  std::vector<Vec> out;
  for (int t = 0; t < steps; ++t) {
    optimizer_step(be, cfg, owner.state(), p.data(), kGrads[static_cast<size_t>(t)].data(), 3, lr);
    EXPECT_EQ(owner.state().step, t + 1);
    out.push_back(p);
  }
  return out;
}

// Adam by hand, one scalar at a time:
//   m_t = b1 m + (1 - b1) g,  v_t = b2 v + (1 - b2) g^2,
//   p_t = p - lr (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps) - lr wd p.
std::vector<Vec> adam_by_hand(double lr, double b1, double b2, double eps, double wd, int steps) {
  Vec p = kP0, m{}, v{};
  std::vector<Vec> out;
  for (int t = 1; t <= steps; ++t) {
    const Vec& g = kGrads[static_cast<size_t>(t - 1)];
    for (size_t i = 0; i < 3; ++i) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const double mhat = m[i] / (1 - std::pow(b1, t));
      const double vhat = v[i] / (1 - std::pow(b2, t));
      p[i] = p[i] - lr * mhat / (std::sqrt(vhat) + eps) - lr * wd * p[i];
    }
    out.push_back(p);
  }
  return out;
}

// SGD by hand (PyTorch): g' = g + wd p;  buf = mu buf + g' (buf = g' at the first step);
// p -= lr buf.
std::vector<Vec> sgd_by_hand(double lr, double mu, double wd, int steps) {
  Vec p = kP0, buf{};
  std::vector<Vec> out;
  for (int t = 1; t <= steps; ++t) {
    const Vec& g = kGrads[static_cast<size_t>(t - 1)];
    for (size_t i = 0; i < 3; ++i) {
      const double gi = g[i] + wd * p[i];
      buf[i] = t == 1 ? gi : mu * buf[i] + gi;
      p[i] -= lr * (mu != 0 ? buf[i] : gi);
    }
    out.push_back(p);
  }
  return out;
}

void expect_near(const std::vector<Vec>& got, const std::vector<Vec>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t t = 0; t < got.size(); ++t)
    for (size_t i = 0; i < 3; ++i)
      EXPECT_NEAR(got[t][i], want[t][i], kTol) << "step " << t + 1 << " element " << i;
}

TEST(Optim, AdamFirstStepMovesByLrTimesSign) {
  // At t = 1 the bias-corrected moments are g and g^2, so p moves by lr g / (|g| + eps).
  OptimizerConfig cfg;  // adam defaults
  const double lr = 0.01;
  const std::vector<Vec> got = run(cfg, lr, 1);
  for (size_t i = 0; i < 3; ++i) {
    const double g = kGrads[0][i];
    EXPECT_NEAR(got[0][i], kP0[i] - lr * g / (std::fabs(g) + 1e-8), kTol) << i;
  }
}

TEST(Optim, AdamThreeSteps) {
  OptimizerConfig cfg;
  cfg.lr = 1.0;  // not read: the step's lr argument wins
  expect_near(run(cfg, 0.01, 3), adam_by_hand(0.01, 0.9, 0.999, 1e-8, 0.0, 3));
}

TEST(Optim, AdamWDecoupledDecayThreeSteps) {
  OptimizerConfig cfg;
  cfg.beta1 = 0.8;
  cfg.beta2 = 0.99;
  cfg.eps = 1e-6;
  cfg.weight_decay = 0.1;
  expect_near(run(cfg, 0.05, 3), adam_by_hand(0.05, 0.8, 0.99, 1e-6, 0.1, 3));
}

TEST(Optim, SgdPlain) {
  OptimizerConfig cfg;
  cfg.kind = "sgd";
  const std::vector<Vec> got = run(cfg, 0.1, 3);
  // p_3 = p_0 - lr (g_1 + g_2 + g_3), written out for element 0: 0.5 - 0.1 (0.1 - 0.4 + 0.2).
  EXPECT_NEAR(got[2][0], 0.51, kTol);
  expect_near(got, sgd_by_hand(0.1, 0.0, 0.0, 3));
}

TEST(Optim, SgdMomentum) {
  OptimizerConfig cfg;
  cfg.kind = "sgd";
  cfg.momentum = 0.9;
  const std::vector<Vec> got = run(cfg, 0.1, 3);
  // Element 0: buf = 0.1, then 0.09 - 0.4 = -0.31, then -0.279 + 0.2 = -0.079;
  // p = 0.5 - 0.01 = 0.49, then 0.49 + 0.031 = 0.521, then 0.521 + 0.0079 = 0.5289.
  EXPECT_NEAR(got[2][0], 0.5289, kTol);
  expect_near(got, sgd_by_hand(0.1, 0.9, 0.0, 3));
}

TEST(Optim, SgdMomentumWeightDecay) {
  OptimizerConfig cfg;
  cfg.kind = "sgd";
  cfg.momentum = 0.5;
  cfg.weight_decay = 0.01;
  expect_near(run(cfg, 0.2, 3), sgd_by_hand(0.2, 0.5, 0.01, 3));
}

TEST(Optim, SgdWeightDecayNoMomentum) {
  OptimizerConfig cfg;
  cfg.kind = "sgd";
  cfg.weight_decay = 0.1;
  const std::vector<Vec> got = run(cfg, 0.1, 2);
  // Element 0, step 1: 0.5 - 0.1 (0.1 + 0.05) = 0.485.
  EXPECT_NEAR(got[0][0], 0.485, kTol);
  expect_near(got, sgd_by_hand(0.1, 0.0, 0.1, 2));
}

TEST(Optim, StateBuffersPerKind) {
  ReferenceBackend<double> be;
  OptimizerConfig adam;
  OptimizerStateOwner<double> a(be, adam, 5);
  EXPECT_NE(a.state().m, nullptr);
  EXPECT_NE(a.state().v, nullptr);
  EXPECT_EQ(a.state().n, 5u);
  EXPECT_EQ(a.state().step, 0);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(a.state().m[i], 0.0);

  OptimizerConfig sgd;
  sgd.kind = "sgd";
  OptimizerStateOwner<double> s(be, sgd, 5);
  EXPECT_NE(s.state().m, nullptr);
  EXPECT_EQ(s.state().v, nullptr);

  OptimizerStateOwner<double> moved(std::move(a));
  EXPECT_EQ(a.state().m, nullptr);
  EXPECT_NE(moved.state().v, nullptr);
}

TEST(Optim, FloatInstantiationRuns) {
  ReferenceBackend<float> be;
  OptimizerConfig cfg;
  OptimizerStateOwner<float> owner(be, cfg, 3);
  std::array<float, 3> p = {0.5f, -1.0f, 2.0f}, g = {0.1f, -0.2f, 0.3f};
  optimizer_step(be, cfg, owner.state(), p.data(), g.data(), 3, 0.01);
  EXPECT_NEAR(p[0], 0.49f, 1e-6f);
  EXPECT_NEAR(p[1], -0.99f, 1e-6f);
  EXPECT_NEAR(clip_grad_norm(be, g.data(), 3, 0.0), std::sqrt(0.14), 1e-6);
}

TEST(Optim, BadConfigAndSizeMismatchThrow) {
  ReferenceBackend<double> be;
  OptimizerConfig cfg;
  cfg.kind = "adagrad";
  EXPECT_THROW(OptimizerStateOwner<double>(be, cfg, 3), std::runtime_error);
  cfg = OptimizerConfig{};
  cfg.beta2 = 1.0;
  EXPECT_THROW(validate_optimizer_config(cfg), std::runtime_error);
  cfg = OptimizerConfig{};
  cfg.kind = "sgd";
  cfg.momentum = -0.1;
  EXPECT_THROW(validate_optimizer_config(cfg), std::runtime_error);

  cfg = OptimizerConfig{};
  OptimizerStateOwner<double> owner(be, cfg, 3);
  Vec p = kP0, g = kGrads[0];
  EXPECT_THROW(optimizer_step(be, cfg, owner.state(), p.data(), g.data(), 2, 0.01),
               std::runtime_error);
  OptimizerConfig sgd;
  sgd.kind = "sgd";
  OptimizerStateOwner<double> sgd_state(be, sgd, 3);
  // An SGD state has no v: using it for Adam is an error, not a crash.
  EXPECT_THROW(optimizer_step(be, cfg, sgd_state.state(), p.data(), g.data(), 3, 0.01),
               std::runtime_error);
}

TEST(Optim, ClipGradNorm) {
  ReferenceBackend<double> be;
  // ||(3, 4, 12)|| = sqrt(9 + 16 + 144) = 13.
  Vec g = {3.0, 4.0, 12.0};
  EXPECT_NEAR(clip_grad_norm(be, g.data(), 3, 20.0), 13.0, 1e-14);  // below: untouched
  EXPECT_EQ(g, (Vec{3.0, 4.0, 12.0}));
  EXPECT_NEAR(clip_grad_norm(be, g.data(), 3, 0.0), 13.0, 1e-14);  // max_norm <= 0: off
  EXPECT_NEAR(clip_grad_norm(be, g.data(), 3, -1.0), 13.0, 1e-14);
  EXPECT_EQ(g, (Vec{3.0, 4.0, 12.0}));
  // Above: scaled by 6.5 / 13 = 0.5; returns the norm before clipping.
  EXPECT_NEAR(clip_grad_norm(be, g.data(), 3, 6.5), 13.0, 1e-14);
  EXPECT_NEAR(g[0], 1.5, 1e-14);
  EXPECT_NEAR(g[1], 2.0, 1e-14);
  EXPECT_NEAR(g[2], 6.0, 1e-14);
  EXPECT_NEAR(clip_grad_norm(be, g.data(), 3, 0.0), 6.5, 1e-14);
}

TEST(Optim, ClipGradNormNonFiniteLeavesGradsAlone) {
  ReferenceBackend<double> be;
  Vec g = {1.0, NAN, 2.0};
  EXPECT_TRUE(std::isnan(clip_grad_norm(be, g.data(), 3, 1.0)));
  EXPECT_EQ(g[0], 1.0);
  EXPECT_EQ(g[2], 2.0);
}

// The cosine schedule at its analytic points: lr at the start, the mean of lr and lr_min halfway,
// lr_min at the end and after it; "constant" ignores progress.
TEST(LearningRateSchedule, CosineAndConstantAtTheirAnalyticPoints) {
  OptimizerConfig cfg;
  cfg.lr = 1e-2, cfg.lr_min = 1e-4;
  EXPECT_DOUBLE_EQ(scheduled_lr(cfg, 0.7), 1e-2);
  cfg.schedule = "cosine";
  EXPECT_DOUBLE_EQ(scheduled_lr(cfg, 0.0), 1e-2);
  EXPECT_NEAR(scheduled_lr(cfg, 0.5), 0.5 * (1e-2 + 1e-4), 1e-15);
  EXPECT_NEAR(scheduled_lr(cfg, 0.25), 1e-4 + (1e-2 - 1e-4) * (0.5 + 0.25 * std::sqrt(2.0)), 1e-15);
  EXPECT_NEAR(scheduled_lr(cfg, 1.0), 1e-4, 1e-15);
  EXPECT_NEAR(scheduled_lr(cfg, 1.3), 1e-4, 1e-15);
}

}  // namespace
}  // namespace distvae
