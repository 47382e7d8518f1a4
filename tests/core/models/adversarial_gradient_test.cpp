// Gradients of the adversarial objectives against central finite differences (reference backend,
// double): the discriminator's logistic loss, the implicit prior's E[T(z)] path into the encoder,
// the AAE encoder term, the generator path through D, and the GAN's proximal term; the GAN's
// instance noise (schedule, keyed draws, statistics, gradient through the noisy input).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "core/backends/reference.h"
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

// sigma(p) = sigma0 (1 - p), clamped outside [0, 1]; the Gan follows set_progress.
TEST(GanInstanceNoise, AnnealedSchedule) {
  EXPECT_DOUBLE_EQ(instance_noise_sigma(0.4, 0.0), 0.4);
  EXPECT_DOUBLE_EQ(instance_noise_sigma(0.4, 0.25), 0.3);
  EXPECT_DOUBLE_EQ(instance_noise_sigma(0.4, 0.5), 0.2);
  EXPECT_DOUBLE_EQ(instance_noise_sigma(0.4, 1.0), 0.0);
  EXPECT_DOUBLE_EQ(instance_noise_sigma(0.4, 1.7), 0.0);
  EXPECT_DOUBLE_EQ(instance_noise_sigma(0.4, -0.5), 0.4);
  EXPECT_DOUBLE_EQ(instance_noise_sigma(0.0, 0.3), 0.0);
  ReferenceBackend<double> be;
  GanSpec spec = small_gan(0.0);
  spec.instance_noise = 0.4;
  Gan<double> gan(be, spec, 2);
  EXPECT_DOUBLE_EQ(gan.sigma(), 0.4);  // a new model starts at sigma0
  gan.set_progress(0.75);
  EXPECT_DOUBLE_EQ(gan.sigma(), 0.1);
}

// With sigma = 0 (the end of the schedule) the noisy model takes exactly the plain model's steps.
TEST(GanInstanceNoise, ZeroSigmaIsThePlainStep) {
  ReferenceBackend<double> be;
  const int B = 3;
  GanSpec noisy_spec = small_gan(0.5);
  noisy_spec.instance_noise = 0.3;
  Gan<double> noisy(be, noisy_spec, B), plain(be, small_gan(0.5), B);
  noisy.init(2), plain.init(2);
  noisy.set_progress(1.0);
  ASSERT_EQ(noisy.sigma(), 0.0);
  const std::vector<uint64_t> keys = {1, 2, 3};
  const std::vector<double> x = {0.9, 0.1, 0.8, 0.2, 0.5, 0.5, 0.7, 0.3, 0.0, 1.0, 0.6, 0.4};
  EXPECT_EQ(noisy.disc_step(x.data(), B, 4, keys.data(), 1).loss,
            plain.disc_step(x.data(), B, 4, keys.data(), 1).loss);
  EXPECT_EQ(grads_of(noisy.discriminator().net().params()),
            grads_of(plain.discriminator().net().params()));
  EXPECT_EQ(noisy.gen_step(B, 4, keys.data()).loss, plain.gen_step(B, 4, keys.data()).loss);
  EXPECT_EQ(grads_of(noisy.generator().params()), grads_of(plain.generator().params()));
}

// With sigma > 0: D's input is x + sigma eps with eps the documented keyed draws, recomputed here
// from the streams; the realised noise has mean 0 and variance sigma^2, differs between the real
// and the generated rows, the sub-steps and the generator step; the generator's gradient through
// the noisy input matches finite differences of the noisy loss.
TEST(GanInstanceNoise, DiscriminatorSeesKeyedGaussianNoise) {
  ReferenceBackend<double> be;
  const int B = 16, D = 64, L = 3;
  const double sigma0 = 0.5, progress = 0.4, sigma = 0.3;
  const uint64_t seed = 4;
  GanSpec spec;
  spec.image = Shape{1, 8, 8};
  spec.latent = L;
  spec.generator = {layer("linear", 6), layer("tanh"), layer("linear", D), layer("sigmoid")};
  spec.discriminator = {layer("linear", 5), layer("elu"), layer("linear", 1)};
  spec.instance_noise = sigma0;
  Gan<double> gan(be, spec, B);
  gan.init(2);
  gan.set_progress(progress);
  ASSERT_NEAR(gan.sigma(), sigma, 1e-15);
  std::vector<uint64_t> keys(B);
  for (int b = 0; b < B; ++b) keys[size_t(b)] = 1000 + 7 * uint64_t(b);
  std::vector<double> x(size_t(B) * D);
  uniform_fill(seed, stream_id(rng_purpose::test, 3), 0, x.size(), x.data());

  // eps of image b, stream (purpose, keys[b]), elements [use D, (use + 1) D); and G(z) for z of
  // stream (z_purpose, keys[b]) at counter k.
  auto eps = [&](uint32_t purpose, uint64_t use) {
    std::vector<double> e(size_t(B) * D);
    for (int b = 0; b < B; ++b)
      normal_fill(seed, stream_id(purpose, keys[size_t(b)]), use * D, size_t(D),
                  e.data() + size_t(b) * D);
    return e;
  };
  auto fakes = [&](uint32_t z_purpose, uint64_t k) {
    std::vector<double> z(size_t(B) * L);
    for (int b = 0; b < B; ++b)
      normal_fill(seed, stream_id(z_purpose, keys[size_t(b)]), k * L, size_t(L),
                  z.data() + size_t(b) * L);
    const double* g = gan.generator().forward(z.data(), B);
    return std::vector<double>(g, g + size_t(B) * D);
  };
  auto plus = [&](std::vector<double> u, const std::vector<double>& e) {
    for (size_t i = 0; i < u.size(); ++i) u[i] += sigma * e[i];
    return u;
  };

  for (uint64_t k : {0u, 1u}) {
    const DiscStats s = gan.disc_step(x.data(), B, seed, keys.data(), int(k));
    const std::vector<double> g = grads_of(gan.discriminator().net().params());
    const std::vector<double> e_real = eps(rng_purpose::gan_disc_instance_noise, 2 * k);
    const std::vector<double> e_fake = eps(rng_purpose::gan_disc_instance_noise, 2 * k + 1);
    const std::vector<double> u_q = plus(x, e_real);
    const std::vector<double> u_p = plus(fakes(rng_purpose::gan_disc_noise, k), e_fake);
    const DiscStats ref = gan.discriminator().loss_and_grad(u_q.data(), u_p.data(), B);
    EXPECT_NEAR(s.loss, ref.loss, 1e-12) << "k = " << k;
    EXPECT_LT(rel_err(g.data(), grads_of(gan.discriminator().net().params()).data(), g.size()),
              1e-12);
    // Not the clean loss: the noise reached D.
    const std::vector<double> clean_p = fakes(rng_purpose::gan_disc_noise, k);
    EXPECT_GT(
        std::abs(s.loss - gan.discriminator().loss_and_grad(x.data(), clean_p.data(), B).loss),
        1e-4);
    // The realised noise sigma eps: mean 0 (4 standard errors), variance sigma^2 (within 10%,
    // about 4 standard errors at n = 1024), the real and generated rows uncorrelated.
    for (const std::vector<double>* e : {&e_real, &e_fake}) {
      double m = 0, v = 0;
      for (double a : *e) m += sigma * a / double(e->size());
      for (double a : *e) v += (sigma * a - m) * (sigma * a - m) / double(e->size() - 1);
      EXPECT_LT(std::abs(m), 4 * sigma / std::sqrt(double(e->size())));
      EXPECT_NEAR(v, sigma * sigma, 0.1 * sigma * sigma);
    }
    double c = 0;
    for (size_t i = 0; i < e_real.size(); ++i) c += e_real[i] * e_fake[i] / double(e_real.size());
    EXPECT_LT(std::abs(c), 4 / std::sqrt(double(e_real.size())));
  }
  EXPECT_NE(eps(rng_purpose::gan_disc_instance_noise, 0)[0],
            eps(rng_purpose::gan_disc_instance_noise, 2)[0]);

  // Generator step: loss = mean softplus(-T(G(z) + sigma eps)), eps from the generator's stream.
  const GanGenStats gs = gan.gen_step(B, seed, keys.data());
  const std::vector<double> gg = grads_of(gan.generator().params());
  const std::vector<double> e_gen = eps(rng_purpose::gan_gen_instance_noise, 0);
  EXPECT_NE(e_gen[0], eps(rng_purpose::gan_disc_instance_noise, 1)[0]);
  const std::vector<double> u = plus(fakes(rng_purpose::gan_gen_noise, 0), e_gen);
  std::vector<double> per_row(B);
  gan.discriminator().output_and_input_grad(u.data(), B, DiscOutput::softplus_neg, 1.0, nullptr,
                                            per_row.data());
  double expect = 0;
  for (double r : per_row) expect += r / B;
  EXPECT_NEAR(gs.loss, expect, 1e-12);
  double gmax = 0;
  EXPECT_LT(fd_error(
                gan.generator().params(), gg,
                [&] { return gan.gen_step(B, seed, keys.data()).loss; }, &gmax),
            1e-6);
  EXPECT_GT(gmax, 1e-4);
}

}  // namespace
}  // namespace distvae
