// AIS log-likelihood and BDMC over ranks: rank r takes images [r N / W, (r + 1) N / W); an image's
// chains draw from streams keyed by its index, so the estimate does not depend on W.
#include "launch/eval/marginal_likelihood.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>
#include <stdexcept>

#include "core/models/ais.h"
#include "core/rng.h"
#include "io/data/image_batch.h"
#include "io/data/image_set.h"
#include "launch/train/model_setup.h"

namespace distvae {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

AisOptions ais_options(const MarginalOptions& o, int temperatures) {
  AisOptions a;
  a.chains = o.chains, a.temperatures = temperatures, a.leapfrog = o.leapfrog;
  a.step_size = o.step_size, a.seed = o.seed;
  return a;
}

// Sums over this rank's images of each image's estimate: log p(x), its variance, ESS.
struct ImageSums {
  double log_px = 0, var = 0, ess = 0;
  void add(const AisChains& a, int images, int chains, double sign = 1.0) {
    for (int i = 0; i < images; ++i) {
      const LogNormalizer e = log_normalizer(std::vector<double>(
          a.log_w.begin() + long(i) * chains, a.log_w.begin() + long(i + 1) * chains));
      log_px += sign * e.log_z, var += e.std_error * e.std_error, ess += e.ess;
    }
  }
};

std::string clock_text(double s) {
  char b[32];
  const long t = long(s + 0.5);
  std::snprintf(b, sizeof b, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  return b;
}

// What AIS anneals through: the loaded VAE itself, or, with a Gaussian observation model, a VAE
// built around the decoder's (or generator's) layers with a sigmoid appended to a Bernoulli
// decoder's logits and the likelihood N(x; mean, sigma^2 I), its parameters copied over. The
// appended sigmoid fuses into the last layer, so the parameter layouts are the same.
struct Annealed {
  std::unique_ptr<Vae<float>> own;
  Vae<float>* vae = nullptr;
};

Annealed annealed_model(LoadedModel& m, const std::string& checkpoint, double sigma,
                        const char* flag) {
  Annealed a;
  const Config& c = m.config;
  if (sigma <= 0) {
    if (m.model.gan)
      throw std::runtime_error(std::string(flag) + ": " + checkpoint +
                               " is a gan, which has no likelihood p(x|z) of its own; give one "
                               "with --ais-gaussian SIGMA");
    a.vae = m.model.vae.get();
    return a;
  }
  if (m.model.latent_disc && m.model.vae->prior_kind() == PriorKind::implicit)
    throw std::runtime_error("--ais-gaussian: " + checkpoint +
                             " is an implicit_prior_vae; the Gaussian observation model is for "
                             "vae, aae and gan");
  if (m.model.vae && c.model.gaussian_variance == "learned")
    throw std::runtime_error("--ais-gaussian: " + checkpoint +
                             " has a learned-variance decoder; its own likelihood is already "
                             "Gaussian (leave --ais-gaussian out)");
  Network<float>& from = m.model.gan ? m.model.gan->generator() : m.model.vae->decoder();
  VaeSpec spec;
  spec.image = Shape{m.geom.channels, m.geom.height, m.geom.width};
  spec.latent = c.model.latent;
  spec.decoder = m.model.gan ? c.model.generator : c.model.decoder;
  if (m.model.vae && c.model.likelihood == "bernoulli") {
    LayerSpec sigmoid;
    sigmoid.type = "sigmoid";
    spec.decoder.push_back(sigmoid);
  }
  spec.likelihood.kind = Likelihood::gaussian;
  spec.likelihood.fixed_logvar = 2 * std::log(sigma);
  a.own = std::make_unique<Vae<float>>(*m.backend, spec, from.max_batch());
  Network<float>& to = a.own->decoder();
  const auto& a_slices = to.params().slices();
  const auto& b_slices = from.params().slices();
  const bool same = a_slices.size() == b_slices.size() &&
                    std::equal(a_slices.begin(), a_slices.end(), b_slices.begin(),
                               [](const ParamSlice& x, const ParamSlice& y) {
                                 return x.offset == y.offset && x.shape == y.shape;
                               });
  if (!same)
    throw std::logic_error("--ais-gaussian: the observation model's parameters differ from " +
                           from.name() + "'s");
  m.backend->copy(from.params().values(), to.params().values(), from.params().values_size());
  a.vae = a.own.get();
  return a;
}

// This rank's block [first, last) of n images.
std::pair<int64_t, int64_t> my_block(int64_t n, const Communicator& comm) {
  return {n * comm.rank() / comm.size(), n * (comm.rank() + 1) / comm.size()};
}

}  // namespace

AisFigures ais_log_likelihood(const std::string& checkpoint, const ImageSet& set,
                              const MarginalOptions& o, Communicator& comm, bool print) {
  LoadedModel m = load_model_checkpoint(checkpoint, o.rows);
  const Annealed annealed = annealed_model(m, checkpoint, o.gaussian_sigma, "--ais");
  Vae<float>& vae = *annealed.vae;
  const Config& c = m.config;
  const int64_t D = set.geom.pixels(), N = set.count;
  const auto [first, last] = my_block(N, comm);
  const int per_call = std::max(1, o.rows / o.chains);  // images per AIS call: one progress line
  const int64_t bin_seed =
      c.data.binarize == "dynamic" && o.gaussian_sigma <= 0 ? c.eval.binarize_seed : -1;
  std::vector<float> x(size_t(per_call) * D);
  std::vector<int64_t> idx(static_cast<size_t>(per_call));
  ImageSums sums;
  double accepted = 0;
  const auto t0 = Clock::now();
  for (int64_t i0 = first; i0 < last; i0 += per_call) {
    const int B = int(std::min<int64_t>(per_call, last - i0));
    std::iota(idx.begin(), idx.begin() + B, i0);
    const std::vector<uint64_t> keys(idx.begin(), idx.begin() + B);  // as likelihood_figures
    decode_batch(set.pixels.data(), set.geom, idx.data(), keys.data(), B, bin_seed, x.data());
    AisOptions a = ais_options(o, o.temperatures);
    a.first_chain = uint64_t(i0) * uint64_t(o.chains);
    const AisChains r = ais_marginal(vae, x.data(), B, a);
    sums.add(r, B, o.chains);
    accepted += r.acceptance * B;
    if (print) {
      const int64_t done = i0 + B - first, mine = last - first;
      const double per = seconds_since(t0) / double(done);
      std::printf("\r  AIS: rank 0 %lld/%lld images  log p(x) so far %.3f  %.2f s/image  ETA %s ",
                  (long long)done, (long long)mine, sums.log_px / double(done), per,
                  clock_text(per * double(mine - done)).c_str());
      std::fflush(stdout);
    }
  }
  if (print) std::printf("\n");
  const double mine = seconds_since(t0);  // rank 0's own time: its images per second
  double s[4] = {sums.log_px, sums.var, sums.ess, accepted};
  comm.allreduce(s, 4, ReduceOp::sum);
  AisFigures f;
  f.images = N, f.chains = o.chains, f.temperatures = o.temperatures;
  f.log_px = s[0] / double(N), f.std_error = std::sqrt(s[1]) / double(N);
  f.ess = s[2] / double(N), f.acceptance = s[3] / double(N);
  f.seconds_per_image = mine / double(std::max<int64_t>(1, last - first));
  return f;
}

namespace {

// x ~ p(x|z) from the decoder's output o for one image, with the draws of `stream` from element
// `from` on: Bernoulli(sigmoid(logit)), or mean + e^(v/2) eps with the likelihood's variance.
void draw_image(const LikelihoodSpec& lik, const float* o, int D, uint64_t seed, uint64_t stream,
                uint64_t from, std::vector<float>& u, float* x) {
  if (lik.kind == Likelihood::bernoulli) {
    uniform_fill(seed, stream, from, size_t(D), u.data());
    for (int d = 0; d < D; ++d) x[d] = u[size_t(d)] * (1.0f + std::exp(-o[d])) < 1.0f ? 1.f : 0.f;
    return;
  }
  normal_fill(seed, stream, from, size_t(D), u.data());
  for (int d = 0; d < D; ++d) {
    const double v =
        lik.learned_variance ? std::max(double(o[D + d]), lik.logvar_floor) : lik.fixed_logvar;
    x[d] = float(o[d] + std::exp(0.5 * v) * u[size_t(d)]);
  }
}

// n images simulated from the model on this rank's block: z_i ~ N(0, I) and x_i ~ p(x|z_i), both
// from stream (bdmc, first + i): the z at elements [0, L), the pixel draws a whole block after.
// An autoregressive decoder draws its pixels one by one from stream (pixel_sample, first + i).
void simulate(Vae<float>& vae, int64_t first, int n, uint64_t seed, std::vector<float>& z,
              std::vector<float>& x) {
  const int L = vae.spec().latent, D = vae.image_size(), rows = vae.decoder().max_batch();
  const LikelihoodSpec& lik = vae.spec().likelihood;
  const size_t out_size = size_t(D) * (lik.learned_variance ? 2 : 1);
  z.resize(size_t(n) * L), x.resize(size_t(n) * D);
  std::vector<float> out(size_t(rows) * out_size), u(static_cast<size_t>(D));
  for (int i = 0; i < n; ++i)
    normal_fill(seed, stream_id(rng_purpose::bdmc, uint64_t(first + i)), 0, size_t(L),
                z.data() + size_t(i) * L);
  for (int b0 = 0; b0 < n; b0 += rows) {
    const int B = std::min(rows, n - b0);
    if (vae.decoder().autoregressive()) {
      vae.draw_images(z.data() + size_t(b0) * L, B, seed, uint64_t(first + b0),
                      x.data() + size_t(b0) * D, nullptr);
      continue;
    }
    vae.decode_output(z.data() + size_t(b0) * L, B, out.data());
    for (int i = b0; i < b0 + B; ++i)
      draw_image(lik, out.data() + size_t(i - b0) * out_size, D, seed,
                 stream_id(rng_purpose::bdmc, uint64_t(first + i)), (uint64_t(L) + 3) / 4 * 4, u,
                 x.data() + size_t(i) * D);
  }
}

}  // namespace

std::vector<BdmcRow> bdmc_bounds(const std::string& checkpoint, const MarginalOptions& o,
                                 Communicator& comm, bool print) {
  LoadedModel m = load_model_checkpoint(checkpoint, o.rows);
  const Annealed annealed = annealed_model(m, checkpoint, o.gaussian_sigma, "--bdmc");
  Vae<float>& vae = *annealed.vae;
  const int L = m.config.model.latent, C = o.chains;
  const auto [first, last] = my_block(o.bdmc, comm);
  const int n = int(last - first);
  std::vector<float> z, x;
  simulate(vae, first, n, o.seed, z, x);
  std::vector<float> start(size_t(n) * C * L);  // every chain of image i starts at z_i
  for (size_t i = 0; i < size_t(n); ++i)
    for (size_t c = 0; c < size_t(C); ++c)
      std::copy_n(z.begin() + long(i) * L, L, start.begin() + long(i * C + c) * L);
  std::vector<BdmcRow> rows;
  for (int K : {o.temperatures / 8, o.temperatures / 4, o.temperatures / 2, o.temperatures}) {
    if (K < 8 && K != o.temperatures) continue;
    const auto t0 = Clock::now();
    AisOptions a = ais_options(o, K);
    a.first_chain = uint64_t(first) * uint64_t(C);
    a.seed = o.seed + 1;  // the chains' own draws, apart from the simulation's
    ImageSums lower, upper;
    if (n > 0) {
      lower.add(ais_marginal(vae, x.data(), n, a), n, C);
      upper.add(ais_marginal(vae, x.data(), n, a, start.data()), n, C, -1.0);  // E w = 1/p(x)
    }
    double s[4] = {lower.log_px, upper.log_px, lower.var, upper.var};
    comm.allreduce(s, 4, ReduceOp::sum);
    BdmcRow r;
    r.temperatures = K, r.seconds = seconds_since(t0);
    r.lower = s[0] / o.bdmc, r.upper = s[1] / o.bdmc;
    r.lower_se = std::sqrt(s[2]) / o.bdmc, r.upper_se = std::sqrt(s[3]) / o.bdmc;
    rows.push_back(r);
    if (print) {
      std::printf(
          "  BDMC %5d temperatures: lower %.3f +- %.3f  upper %.3f +- %.3f  gap %.3f  (%.0f s)\n",
          K, r.lower, r.lower_se, r.upper, r.upper_se, r.upper - r.lower, r.seconds);
      std::fflush(stdout);
    }
    if (r.upper - r.lower < o.bdmc_target) break;
  }
  return rows;
}

}  // namespace distvae
