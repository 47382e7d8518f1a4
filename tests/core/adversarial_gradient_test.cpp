// Gradients of the adversarial objectives against central finite differences (reference backend,
// double): the discriminator's logistic loss, the implicit prior's E[T(z)] path into the encoder,
// the AAE encoder term, the generator path through D, and the GAN's proximal term.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "core/backend_reference.h"
#include "core/models/discriminator.h"
#include "core/models/gan.h"
#include "core/models/vae.h"
#include "core/rng.h"
#include "tests/layer_spec.h"
#include "tests/rel_err.h"

namespace distvae {
namespace {

// max |analytic - fd| / max |fd| over every parameter of ps, where loss() is recomputed at
// params +- h. analytic is read before any perturbation.
double fd_error(ParamStore<double>& ps, const std::vector<double>& analytic,
                const std::function<double()>& loss, double* max_fd = nullptr) {
  const double h = 1e-6;
  std::vector<double> fd(ps.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    const double keep = ps.values()[i];
    ps.values()[i] = keep + h;
    const double up = loss();
    ps.values()[i] = keep - h;
    const double down = loss();
    ps.values()[i] = keep;
    fd[i] = (up - down) / (2 * h);
  }
  if (max_fd) {
    *max_fd = 0;
    for (double g : fd) *max_fd = std::max(*max_fd, std::abs(g));
  }
  return rel_err(analytic.data(), fd.data(), fd.size());
}

std::vector<double> grads_of(ParamStore<double>& ps) {
  return std::vector<double>(ps.grads(), ps.grads() + ps.size());
}

std::vector<double> normal_rows(int n, uint64_t stream, double shift) {
  std::vector<double> v(static_cast<size_t>(n));
  normal_fill(7, stream_id(rng_purpose::test, stream), 0, v.size(), v.data());
  for (double& x : v) x += shift;
  return v;
}

const std::vector<LayerSpec> kDiscLayers = {layer("linear", 5), layer("tanh"), layer("linear", 4),
                                            layer("elu"), layer("linear", 1)};

TEST(AdversarialGradient, DiscriminatorLogisticLoss) {
  ReferenceBackend<double> be;
  const int B = 4, L = 3;
  Discriminator<double> disc(be, "T", Shape{L}, kDiscLayers, B);
  disc.net().init(3);
  const std::vector<double> q = normal_rows(B * L, 1, 0.7), p = normal_rows(B * L, 2, 0.0);
  const DiscStats s = disc.loss_and_grad(q.data(), p.data(), B);
  const std::vector<double> g = grads_of(disc.net().params());
  // The loss recomputed independently from the logits: softplus(-t) for q, softplus(t) for p.
  auto loss = [&] {
    double t[2 * B];
    std::vector<double> both(q);
    both.insert(both.end(), p.begin(), p.end());
    const double* out = disc.net().forward(both.data(), 2 * B);
    std::copy(out, out + 2 * B, t);
    double l = 0;
    for (int i = 0; i < 2 * B; ++i) l += std::log1p(std::exp(i < B ? -t[i] : t[i])) / B;
    return l;
  };
  EXPECT_NEAR(s.loss, loss(), 1e-12);
  double gmax = 0;
  EXPECT_LT(fd_error(disc.net().params(), g, loss, &gmax), 1e-7);
  EXPECT_GT(gmax, 1e-3);
}

// With a cap c: T = c - softplus(c - T_net). The loss recomputed from the network's raw output,
// its parameter gradient and the input gradient of T against finite differences; the offsets put
// rows on both sides of the cap.
TEST(AdversarialGradient, CappedDiscriminatorLossAndInputGradient) {
  ReferenceBackend<double> be;
  const int B = 4, L = 3;
  Discriminator<double> disc(be, "T", Shape{L}, kDiscLayers, B);
  disc.net().init(3);
  const std::vector<double> q = normal_rows(B * L, 1, 0.7), p = normal_rows(B * L, 2, 0.0);
  auto raw = [&](const std::vector<double>& u, int n) {
    const double* out = disc.net().forward(u.data(), n);
    return std::vector<double>(out, out + n);
  };
  // Shift T_net by its output bias so that two q rows fall on each side of c.
  const double c = 0.8;
  std::vector<double> t0 = raw(q, B);
  std::sort(t0.begin(), t0.end());
  const ParamSlice& out_bias = disc.net().params().slices().back();
  ASSERT_EQ(out_bias.size, 1u);
  disc.net().params().values()[out_bias.offset] += c - 0.5 * (t0[1] + t0[2]);
  disc.set_cap(c);
  auto capped = [&](double t) { return c - std::log1p(std::exp(c - t)); };
  const DiscStats s = disc.loss_and_grad(q.data(), p.data(), B);
  const std::vector<double> g = grads_of(disc.net().params());
  auto loss = [&] {
    std::vector<double> both(q);
    both.insert(both.end(), p.begin(), p.end());
    const std::vector<double> t = raw(both, 2 * B);
    double l = 0;
    for (int i = 0; i < 2 * B; ++i) {
      const double tc = capped(t[size_t(i)]);
      l += std::log1p(std::exp(i < B ? -tc : tc)) / B;
    }
    return l;
  };
  EXPECT_NEAR(s.loss, loss(), 1e-12);
  double gmax = 0;
  EXPECT_LT(fd_error(disc.net().params(), g, loss, &gmax), 1e-7);
  EXPECT_GT(gmax, 1e-3);
  // Values and input gradient of scale * sum T(u) over the q rows; some above the cap's knee.
  const double scale = 0.7;
  std::vector<double> value(B), du(size_t(B) * L, 0.0);
  disc.output_and_input_grad(q.data(), B, DiscOutput::logit, scale, du.data(), value.data());
  const std::vector<double> t = raw(q, B);
  int above = 0;
  for (int i = 0; i < B; ++i) {
    EXPECT_NEAR(value[size_t(i)], capped(t[size_t(i)]), 1e-12);
    EXPECT_LT(value[size_t(i)], c);
    above += t[size_t(i)] > c ? 1 : 0;
  }
  EXPECT_EQ(above, 2);
  std::vector<double> fd(du.size()), u(q);
  const double h = 1e-6;
  for (size_t j = 0; j < u.size(); ++j) {
    const double keep = u[j];
    double sum[2];
    for (int k = 0; k < 2; ++k) {
      u[j] = keep + (k == 0 ? h : -h);
      const std::vector<double> tk = raw(u, B);
      sum[k] = 0;
      for (double v : tk) sum[k] += scale * capped(v);
    }
    u[j] = keep;
    fd[j] = (sum[0] - sum[1]) / (2 * h);
  }
  EXPECT_LT(rel_err(du.data(), fd.data(), fd.size()), 1e-7);
}

struct PriorCase {
  PriorKind kind;
  Estimator estimator;
  double beta;
};

class VaePriorGradient : public ::testing::TestWithParam<PriorCase> {};

// The VAE loss with the implicit prior (-(ll - beta (KL - T))) or the AAE term
// (-(ll - beta softplus(T))): encoder and decoder gradients against finite differences, and the
// discriminator's own parameter gradients left untouched.
TEST_P(VaePriorGradient, EncoderAndDecoderMatchFiniteDifferences) {
  const PriorCase pc = GetParam();
  ReferenceBackend<double> be;
  VaeSpec spec;
  spec.image = Shape{1, 2, 3};
  spec.latent = 3;
  spec.encoder = {layer("linear", 5), layer("tanh")};
  spec.decoder = {layer("linear", 5), layer("tanh"), layer("linear", 6)};
  spec.estimator = pc.estimator;
  const int B = 3;
  Vae<double> vae(be, spec, B);
  vae.init(5);
  Discriminator<double> disc(be, "T", Shape{spec.latent}, kDiscLayers, B);
  disc.net().init(9);
  const DiscOutput out = pc.kind == PriorKind::implicit ? DiscOutput::logit : DiscOutput::softplus;
  const double sign = pc.kind == PriorKind::implicit ? -1.0 : 1.0;  // cost = -T or softplus(T)
  vae.set_prior(pc.kind, [&](const double* z, int n, double scale, double* dz, double* cost) {
    disc.output_and_input_grad(z, n, out, sign * scale, dz, cost);
    if (sign < 0)
      for (int i = 0; i < n; ++i) cost[i] = -cost[i];
  });
  const std::vector<double> x = {1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 1, 0, 0, 1};
  const std::vector<uint64_t> keys = {4, 8, 15};
  VaeStepArgs a;
  a.seed = 11, a.noise_keys = keys.data(), a.beta = pc.beta;
  std::fill(disc.net().params().grads(), disc.net().params().grads() + disc.net().params().size(),
            7.0);
  const VaeStats st = vae.train_step(x.data(), B, a);
  EXPECT_NE(st.prior_cost, 0.0);
  for (size_t i = 0; i < disc.net().params().size(); ++i)
    ASSERT_EQ(disc.net().params().grads()[i], 7.0) << "T's parameter gradients must stay off";
  // The loss as the definition gives it, from a forward-only evaluation.
  auto loss = [&] {
    std::vector<double> ll(B), kl(B), elbo(B);
    const VaeStats e =
        vae.evaluate_elbo(x.data(), B, a.seed, keys.data(), elbo.data(), ll.data(), kl.data());
    const double prior = pc.kind == PriorKind::implicit ? e.kl + e.prior_cost : e.prior_cost;
    return -(e.log_px_given_z - pc.beta * prior) / B;
  };
  for (Network<double>* net : {&vae.encoder(), &vae.decoder()}) {
    const std::vector<double> g = grads_of(net->params());
    double gmax = 0;
    EXPECT_LT(fd_error(net->params(), g, loss, &gmax), 1e-6) << net->name();
    EXPECT_GT(gmax, 1e-4) << net->name();
  }
  // The prior term does reach the encoder: without it the encoder gradient differs.
  const std::vector<double> with = grads_of(vae.encoder().params());
  vae.set_prior(PriorKind::standard, {});
  vae.train_step(x.data(), B, a);
  EXPECT_GT(rel_err(with.data(), vae.encoder().params().grads(), with.size()), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Priors, VaePriorGradient,
                         ::testing::Values(PriorCase{PriorKind::implicit, Estimator::B, 1.0},
                                           PriorCase{PriorKind::implicit, Estimator::A, 0.6},
                                           PriorCase{PriorKind::adversarial, Estimator::B, 1.0},
                                           PriorCase{PriorKind::adversarial, Estimator::B, 0.3}),
                         [](const auto& info) {
                           return std::string(info.param.kind == PriorKind::implicit
                                                  ? "Implicit"
                                                  : "Adversarial") +
                                  (info.param.estimator == Estimator::A ? "A" : "B") + "_" +
                                  std::to_string(info.index);
                         });

GanSpec small_gan(double proximal) {
  GanSpec s;
  s.image = Shape{1, 2, 2};
  s.latent = 3;
  s.generator = {layer("linear", 5), layer("tanh"), layer("linear", 4), layer("sigmoid")};
  s.discriminator = {layer("linear", 5), layer("elu"), layer("linear", 1)};
  s.proximal = proximal;
  return s;
}

// Generator: -mean log D(G(z)) (+ the proximal term) through D, against finite differences; D's
// gradients untouched. Discriminator: its loss on real images against the generator's fakes.
TEST(AdversarialGradient, GanGeneratorThroughDiscriminatorAndProximalTerm) {
  ReferenceBackend<double> be;
  const int B = 3;
  Gan<double> gan(be, small_gan(0.8), B);
  gan.init(2);
  const std::vector<uint64_t> keys = {1, 2, 3};
  // Emulate a previous update so that G differs from its snapshot G'.
  for (size_t i = 0; i < gan.generator().params().size(); ++i)
    gan.generator().params().values()[i] += 0.05 * std::sin(double(i));
  ParamStore<double>& dps = gan.discriminator().net().params();
  std::fill(dps.grads(), dps.grads() + dps.size(), 7.0);
  const GanGenStats s = gan.gen_step(B, 4, keys.data());
  EXPECT_GT(s.proximal, 0.0);
  for (size_t i = 0; i < dps.size(); ++i) ASSERT_EQ(dps.grads()[i], 7.0);
  const std::vector<double> g = grads_of(gan.generator().params());
  auto loss = [&] {
    const GanGenStats t = gan.gen_step(B, 4, keys.data());
    return t.loss + t.proximal;
  };
  double gmax = 0;
  EXPECT_LT(fd_error(gan.generator().params(), g, loss, &gmax), 1e-6);
  EXPECT_GT(gmax, 1e-4);

  // The proximal term alone: its gradient is the difference of the two generator gradients, and
  // equals the finite difference of lambda * mean ||G - G'||^2.
  Gan<double> plain(be, small_gan(0.0), B);
  plain.init(2);
  for (size_t i = 0; i < plain.generator().params().size(); ++i)
    plain.generator().params().values()[i] = gan.generator().params().values()[i];
  plain.gen_step(B, 4, keys.data());
  std::vector<double> prox_grad(g.size());
  for (size_t i = 0; i < g.size(); ++i) prox_grad[i] = g[i] - plain.generator().params().grads()[i];
  double pmax = 0;
  EXPECT_LT(fd_error(
                gan.generator().params(), prox_grad,
                [&] { return gan.gen_step(B, 4, keys.data()).proximal; }, &pmax),
            1e-6);
  EXPECT_GT(pmax, 1e-4) << "the proximal gradient must be non-zero once G has moved";

  // With G' = G (before the first update) the term and its gradient vanish.
  gan.take_snapshot();
  EXPECT_EQ(gan.gen_step(B, 4, keys.data()).proximal, 0.0);
}

TEST(AdversarialGradient, GanDiscriminatorStep) {
  ReferenceBackend<double> be;
  const int B = 3;
  Gan<double> gan(be, small_gan(0.0), B);
  gan.init(2);
  const std::vector<uint64_t> keys = {1, 2, 3};
  const std::vector<double> x = {0.9, 0.1, 0.8, 0.2, 0.5, 0.5, 0.7, 0.3, 0.0, 1.0, 0.6, 0.4};
  const std::vector<double> gen_before(
      gan.generator().params().values(),
      gan.generator().params().values() + gan.generator().params().size());
  gan.disc_step(x.data(), B, 4, keys.data(), 0);
  ParamStore<double>& dps = gan.discriminator().net().params();
  const std::vector<double> g = grads_of(dps);
  double gmax = 0;
  EXPECT_LT(fd_error(
                dps, g, [&] { return gan.disc_step(x.data(), B, 4, keys.data(), 0).loss; }, &gmax),
            1e-7);
  EXPECT_GT(gmax, 1e-3);
  // Another sub-step draws other fakes.
  EXPECT_NE(gan.disc_step(x.data(), B, 4, keys.data(), 1).loss,
            gan.disc_step(x.data(), B, 4, keys.data(), 0).loss);
}

}  // namespace
}  // namespace distvae
