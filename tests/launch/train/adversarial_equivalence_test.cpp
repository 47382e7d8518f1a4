// Distributed equivalence of the adversarial families through the trainer's own step
// (launch/train/train_step): N ranks x B/N images reproduce one process x B images for the
// implicit-prior VAE (encoder, decoder and T(z), also with T bounded) and the GAN (generator, D(x)
// and the proximal snapshot, also with instance noise): the main networks' gradients after the
// first step (float, to 1e-5), and every network's parameters after 20 Adam steps with the
// discriminator updated in between (to 1e-3).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "core/rng.h"
#include "dist/mpi_communicator.h"
#include "launch/train/train_step.h"
#include "tests/layer_spec.h"
#include "tests/rel_err.h"

namespace distvae {
namespace {

constexpr int kGlobalBatch = 64;

// "implicit_prior_vae_capped": the implicit prior with T bounded above (model.discriminator_cap),
// the bound near these small networks' T values, where c - softplus(c - t) is curved.
// "gan_instance_noise": the GAN with annealed instance noise on D's inputs (keyed by the image).
// "implicit_prior_vae_clipped": SGD with every step's gradients clipped by their global norm (the
// norm over all of them, though each rank may hold only its slice reduced).
Config family_config(const std::string& name) {
  const bool capped = name == "implicit_prior_vae_capped";
  const bool clipped = name == "implicit_prior_vae_clipped";
  const bool noisy = name == "gan_instance_noise";
  const std::string family = capped || clipped ? "implicit_prior_vae" : noisy ? "gan" : name;
  Config c;
  c.model.family = family;
  if (capped) c.model.discriminator_cap = 0.5;
  if (clipped) {
    for (OptimConfig* o : {&c.optim, &c.disc_optim})
      o->kind = "sgd", o->lr = 0.05, o->momentum = 0.9, o->grad_clip = 0.05;
  }
  c.model.latent = 4;
  c.train.seed = 5;
  c.train.bucket_kb = 1;  // several buckets even for these small networks
  c.objective.n_disc = 2;
  c.disc_optim.lr = 2e-3;
  if (family == "gan") {
    c.model.generator = {layer("linear", 24), layer("tanh"), layer("linear", 36), layer("sigmoid")};
    c.model.discriminator = {layer("linear", 16), layer("elu"), layer("linear", 1)};
    c.objective.proximal = 0.5;
    if (noisy) c.objective.instance_noise = 0.3;
    c.data.binarize = "none";
  } else {
    c.model.encoder = {layer("linear", 24), layer("relu")};
    c.model.decoder = {layer("linear", 24), layer("tanh"), layer("linear", 36)};
    c.model.discriminator = {layer("linear", 16), layer("elu"), layer("linear", 1)};
  }
  return c;
}

double worst_tensor_diff(ParamStore<float>& a, ParamStore<float>& b, bool grads) {
  double w = 0;
  for (const ParamSlice& s : a.slices()) {
    const float* pa = (grads ? a.grads() : a.values()) + s.offset;
    const float* pb = (grads ? b.grads() : b.values()) + s.offset;
    w = std::max(w, rel_err(pa, pb, s.size));
  }
  return w;
}

class AdversarialEquivalence : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<Communicator> comm = make_mpi_communicator();
};

TEST_P(AdversarialEquivalence, RanksReproduceOneProcess) {
  const Config c = family_config(GetParam());
  const ImageGeom g{6, 6, 1};
  const int world = comm->size(), rank = comm->rank(), B = kGlobalBatch / world, D = 36;
  const int steps = 20;
  auto be = make_backend("dnnl");
  auto local = make_local_communicator();
  Trainee dist(c, g, *be, *comm, B), ref(c, g, *be, *local, kGlobalBatch);
  std::vector<float> data(size_t(kGlobalBatch) * steps * D);
  uniform_fill(7, stream_id(rng_purpose::test, 1), 0, data.size(), data.data());
  std::vector<uint64_t> keys(kGlobalBatch);
  double grad_diff = 0;
  for (int t = 0; t < steps; ++t) {
    const float* global = data.data() + size_t(t) * kGlobalBatch * D;
    for (int i = 0; i < kGlobalBatch; ++i) keys[size_t(i)] = uint64_t(t * kGlobalBatch + i);
    VaeStepArgs a;
    a.seed = 11, a.beta = 0.8, a.global_batch = kGlobalBatch;
    const double progress = double(t) / steps;
    ref.step(global, kGlobalBatch, keys.data(), a, progress);
    dist.step(global + size_t(rank) * B * D, B, keys.data() + size_t(rank) * B, a, progress);
    if (t == 0) {
      const auto dm = dist.main_nets(), rm = ref.main_nets();
      // Where the node's ranks split the update, each holds only its slice reduced: gather them.
      for (TrainedNet& n : dm) comm->all_gather(n.net->params().grads(), n.net->params().size());
      if (c.optim.grad_clip > 0)  // the clip must bite, or the test shows nothing about it
        for (const TrainedNet& n : rm) {
          const ParamStore<float>& ps = n.net->params();
          double sq = 0;
          for (size_t j = 0; j < ps.size(); ++j) sq += double(ps.grads()[j]) * ps.grads()[j];
          EXPECT_GT(std::sqrt(sq), 2 * c.optim.grad_clip) << n.net->name();
        }
      for (size_t i = 0; i < dm.size(); ++i)
        grad_diff =
            std::max(grad_diff, worst_tensor_diff(dm[i].net->params(), rm[i].net->params(), true));
    }
    ref.update_main(progress);
    dist.update_main(progress);
  }
  const auto dn = dist.checkpoint_states(), rn = ref.checkpoint_states();
  ASSERT_EQ(dn.size(), rn.size());
  ASSERT_GE(dn.size(), 3u);  // two main networks and T(z), or G, D(x) and the snapshot G'
  double param_diff = 0;
  for (size_t i = 0; i < dn.size(); ++i) {
    const double d = worst_tensor_diff(dn[i].net->params(), rn[i].net->params(), false);
    param_diff = std::max(param_diff, d);
    if (rank == 0)
      std::printf("  %s: %s parameters %.2e\n", GetParam().c_str(), dn[i].net->name().c_str(), d);
  }
  // What a checkpoint carries of the optimizer: its moments, split over the ranks until gathered.
  dist.gather_optimizer_state();
  double moment_diff = 0;
  for (size_t i = 0; i < dn.size(); ++i) {
    if (!dn[i].opt) continue;  // the snapshot G' has no optimizer
    const OptimizerState<float>&a = dn[i].opt->state(), &b = rn[i].opt->state();
    ASSERT_EQ(a.step, b.step);
    for (auto [ma, mb] : {std::pair{a.m, b.m}, std::pair{a.v, b.v}})
      if (ma && mb) moment_diff = std::max(moment_diff, rel_err(ma, mb, a.n));
  }
  if (rank == 0)
    std::printf(
        "%s, %d rank(s): first-step gradients %.2e, parameters after %d steps %.2e, "
        "optimizer moments %.2e\n",
        GetParam().c_str(), world, grad_diff, steps, param_diff, moment_diff);
  EXPECT_LT(grad_diff, 1e-5);
  EXPECT_LT(param_diff, 1e-3);
  EXPECT_LT(moment_diff, 1e-3);
  // The networks did move: a test of nothing would also agree.
  Trainee fresh(c, g, *be, *local, kGlobalBatch);
  EXPECT_GT(
      worst_tensor_diff(fresh.checkpoint_states()[0].net->params(), rn[0].net->params(), false),
      1e-3);
}

INSTANTIATE_TEST_SUITE_P(Families, AdversarialEquivalence,
                         ::testing::Values("implicit_prior_vae", "implicit_prior_vae_capped", "gan",
                                           "gan_instance_noise", "implicit_prior_vae_clipped"));

}  // namespace
}  // namespace distvae
