// Batch normalization against answers computed here on the host: a training forward normalizes
// each channel by the batch, the running averages follow the documented update, evaluation mode
// normalizes by them, the state is saved but never trained, and a discriminator with batch norm
// judges each class in a batch of its own. (Gradients: layer_gradcheck_test.cpp; ranks:
// tests/dist/equivalence_test.cpp.)
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "core/backends/reference.h"
#include "core/models/discriminator.h"
#include "core/network.h"
#include "core/rng.h"
#include "tests/layer_spec.h"
#include "tests/rel_err.h"

namespace distvae {
namespace {

constexpr int kB = 5, kC = 3, kH = 4, kW = 3, kS = kH * kW;

std::vector<double> normals(uint64_t key, size_t n, double scale, double shift) {
  std::vector<double> v(n);
  normal_fill(77, stream_id(rng_purpose::test, key), 0, n, v.data());
  for (double& x : v) x = x * scale + shift;
  return v;
}

// Per channel over the batch: the mean and the biased and unbiased variances.
struct Moments {
  std::vector<double> mean, var, unbiased;
};
Moments moments_of(const std::vector<double>& x) {
  Moments m{std::vector<double>(kC), std::vector<double>(kC), std::vector<double>(kC)};
  const double n = double(kB) * kS;
  for (int c = 0; c < kC; ++c) {
    double s = 0, ss = 0;
    for (int b = 0; b < kB; ++b)
      for (int i = 0; i < kS; ++i) s += x[(size_t(b) * kC + c) * kS + i];
    m.mean[size_t(c)] = s / n;
    for (int b = 0; b < kB; ++b)
      for (int i = 0; i < kS; ++i) {
        const double d = x[(size_t(b) * kC + c) * kS + i] - m.mean[size_t(c)];
        ss += d * d;
      }
    m.var[size_t(c)] = ss / n;
    m.unbiased[size_t(c)] = ss / (n - 1);
  }
  return m;
}

struct BatchNormNet : ::testing::Test {
  ReferenceBackend<double> be;
  Network<double> net{be, "bn", Shape{kC, kH, kW}, {layer("batchnorm")}, kB};
  const size_t n = size_t(kB) * kC * kS;
  std::vector<double> gamma = normals(1, kC, 0.5, 1.0), beta = normals(2, kC, 1.0, 0.0);

  void SetUp() override {
    net.init(1);
    const Layer& l = net.layers()[0];
    std::copy(gamma.begin(), gamma.end(), net.params().value(l.weight));
    std::copy(beta.begin(), beta.end(), net.params().value(l.bias));
  }
  const double* running(bool var) {
    return net.params().value(var ? net.layers()[0].running_var : net.layers()[0].running_mean);
  }
  // y = gamma (x - mean) / sqrt(var + eps) + beta, channel by channel, computed here.
  void expect_normalized(const double* y, const std::vector<double>& x,
                         const std::vector<double>& mean, const std::vector<double>& var) {
    for (int c = 0; c < kC; ++c)
      for (int b = 0; b < kB; ++b)
        for (int i = 0; i < kS; ++i) {
          const size_t k = (size_t(b) * kC + c) * kS + i;
          const double want =
              gamma[size_t(c)] * (x[k] - mean[size_t(c)]) / std::sqrt(var[size_t(c)] + 1e-5) +
              beta[size_t(c)];
          ASSERT_NEAR(y[k], want, 1e-12) << "channel " << c;
        }
  }
};

TEST_F(BatchNormNet, TrainingForwardNormalizesEachChannelByTheBatch) {
  net.set_training(true);
  const std::vector<double> x = normals(3, n, 2.0, 1.5);
  const Moments m = moments_of(x);
  expect_normalized(net.forward(x.data(), kB), x, m.mean, m.var);
}

TEST_F(BatchNormNet, RunningAveragesFollowTheBatchesAndEvaluationUsesThem) {
  // Two training forwards move the averages from (0, 1) by momentum 0.1 each; then evaluation
  // normalizes a third input by them, not by its own statistics.
  net.set_training(true);
  const std::vector<double> x1 = normals(4, n, 2.0, 1.5), x2 = normals(5, n, 0.5, -1.0);
  net.forward(x1.data(), kB);
  net.forward(x2.data(), kB);
  const Moments m1 = moments_of(x1), m2 = moments_of(x2);
  std::vector<double> rm(kC), rv(kC);
  for (size_t c = 0; c < kC; ++c) {
    rm[c] = 0.9 * (0.9 * 0.0 + 0.1 * m1.mean[c]) + 0.1 * m2.mean[c];
    rv[c] = 0.9 * (0.9 * 1.0 + 0.1 * m1.unbiased[c]) + 0.1 * m2.unbiased[c];
  }
  EXPECT_LT(rel_err(running(false), rm.data(), kC), 1e-12);
  EXPECT_LT(rel_err(running(true), rv.data(), kC), 1e-12);

  net.set_training(false);
  const std::vector<double> x3 = normals(6, n, 3.0, 4.0);
  const double* y = net.forward(x3.data(), kB);
  expect_normalized(y, x3, rm, rv);
  // Evaluation leaves the averages alone.
  EXPECT_LT(rel_err(running(false), rm.data(), kC), 1e-12);
  // One sample in evaluation mode is the same sample as in its batch.
  const double first = y[0];
  EXPECT_NEAR(net.forward(x3.data(), 1)[0], first, 1e-15);
}

TEST_F(BatchNormNet, ParameterGradientsNeedATrainingForward) {
  const std::vector<double> x = normals(7, n, 1.0, 0.0);
  net.forward(x.data(), kB);  // evaluation mode, the default
  std::vector<double> dy(n, 1.0);
  EXPECT_THROW(net.backward(dy.data(), kB, ParamGrads::accumulate, true), std::logic_error);
  net.set_training(true);
  net.forward(x.data(), kB);
  EXPECT_NE(net.backward(dy.data(), kB, ParamGrads::accumulate, true), nullptr);
}

// In evaluation mode the layer is affine in x (running averages): its input gradient against
// central finite differences of L = sum w . y for fixed random weights w.
TEST_F(BatchNormNet, EvaluationModeInputGradientMatchesFiniteDifferences) {
  net.set_training(true);
  const std::vector<double> warm = normals(8, n, 2.0, 1.0);
  net.forward(warm.data(), kB);  // running averages away from (0, 1)
  net.set_training(false);
  std::vector<double> x = normals(9, n, 1.5, -0.5);
  const std::vector<double> w = normals(10, n, 1.0, 0.0);
  auto loss = [&] {
    const double* y = net.forward(x.data(), kB);
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += w[i] * y[i];
    return s;
  };
  loss();
  std::vector<double> dy = w;
  const double* dx = net.backward(dy.data(), kB, ParamGrads::none, true);
  ASSERT_NE(dx, nullptr);
  const std::vector<double> got(dx, dx + n);
  for (size_t i = 0; i < n; i += 7) {
    const double keep = x[i], h = 1e-5;
    x[i] = keep + h;
    const double up = loss();
    x[i] = keep - h;
    const double down = loss();
    x[i] = keep;
    EXPECT_NEAR(got[i], (up - down) / (2 * h), 1e-8) << "element " << i;
  }
}

TEST_F(BatchNormNet, RunningAveragesAreSavedStateOutsideTheGradients) {
  const ParamStore<double>& ps = net.params();
  EXPECT_EQ(ps.size(), size_t(2 * kC));         // gamma, beta: trained
  EXPECT_EQ(ps.values_size(), size_t(4 * kC));  // and the running mean and variance
  for (const ParamSlice& s : ps.slices()) {
    const bool state = s.name.find("running") != std::string::npos;
    EXPECT_EQ(s.trainable, !state) << s.name;
    EXPECT_EQ(s.offset >= ps.size(), state) << s.name;  // state after every trainable value
  }
  // init: the identity, averages (0, 1).
  net.init(2);
  for (int c = 0; c < kC; ++c) {
    EXPECT_EQ(running(false)[c], 0.0);
    EXPECT_EQ(running(true)[c], 1.0);
  }
}

// A discriminator with batch norm: each class goes through its own forward, so its outputs on the
// data are those of the network on the data batch alone, and its parameter gradients are those of
// the loss (central differences).
TEST(BatchNormDiscriminator, EachClassIsNormalizedAloneAndTheGradientIsTheLoss) {
  ReferenceBackend<double> be;
  const int B = 4, F = 6;
  Discriminator<double> d(
      be, "disc", Shape{F},
      {layer("linear", 5), layer("batchnorm"), layer("tanh"), layer("linear", 1)}, B);
  d.net().init(3);
  d.net().set_training(true);
  const std::vector<double> q = normals(8, size_t(B) * F, 1.0, 0.5),
                            p = normals(9, size_t(B) * F, 1.5, -0.5);
  const DiscStats st = d.loss_and_grad(q.data(), p.data(), B);
  ParamStore<double>& ps = d.net().params();
  const std::vector<double> grad(ps.grads(), ps.grads() + ps.size());

  // Each class alone: loss = mean_q softplus(-T) + mean_p softplus(T).
  auto loss = [&] {
    double l = 0;
    const double* tq = d.net().forward(q.data(), B);
    for (int i = 0; i < B; ++i) l += std::log1p(std::exp(-tq[i])) / B;
    const double* tp = d.net().forward(p.data(), B);
    for (int i = 0; i < B; ++i) l += std::log1p(std::exp(tp[i])) / B;
    return l;
  };
  EXPECT_NEAR(st.loss, loss(), 1e-12);
  std::vector<double> fd(ps.size());
  for (size_t i = 0; i < fd.size(); ++i) {
    double& v = ps.values()[i];
    const double keep = v;
    v = keep + 1e-6;
    const double lp = loss();
    v = keep - 1e-6;
    const double lm = loss();
    v = keep;
    fd[i] = (lp - lm) / 2e-6;
  }
  EXPECT_LT(rel_err(grad.data(), fd.data(), fd.size()), 1e-6);
}

}  // namespace
}  // namespace distvae
