// Evaluation on the literature's protocol: images binarized once with a fixed seed, ELBO and the
// importance-weighted bound log (1/K) sum_k p(x, z_k) / q(z_k | x) per image, split over ranks;
// for the implicit prior also normalized by AIS's log Z; sample quality for every family.
#include "launch/eval/evaluate.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <optional>
#include <stdexcept>

#include "core/rng.h"
#include "io/data/image_set.h"
#include "io/hdf5/checkpoint.h"
#include "io/hdf5/matrix_file.h"
#include "io/image/image.h"
#include "io/image/png.h"
#include "io/output/json_io.h"
#include "launch/config/config.h"
#include "launch/eval/prior_normalizer.h"
#include "launch/eval/sample_quality.h"
#include "launch/train/model_setup.h"

namespace distvae {

LikelihoodFigures likelihood_figures(Vae<float>& vae, const ImageSet& set, const Config& c,
                                     int batch, int K, Communicator& comm, bool print) {
  const int64_t N = set.count, D = set.geom.pixels();
  const int L = c.model.latent;
  const int64_t bin_seed = c.data.binarize == "dynamic" ? c.eval.binarize_seed : -1;
  const uint64_t noise_seed = uint64_t(c.eval.binarize_seed) + 1;
  std::vector<float> x(size_t(batch) * D), mu(size_t(batch) * L), lv(mu.size());
  std::vector<int64_t> idx(static_cast<size_t>(batch));
  std::vector<uint64_t> key(static_cast<size_t>(batch));
  std::vector<double> elbo(static_cast<size_t>(batch)), ll(elbo), kl(elbo);
  // sums: elbo, log p(x|z), kl, iw, then per dimension mu, mu^2, kl
  std::vector<double> s(4 + 3 * size_t(L), 0.0);
  double* mu_sum = s.data() + 4;
  double* mu_sq = mu_sum + L;
  double* kl_dim = mu_sq + L;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t done = 0;
  for (int64_t first = int64_t(comm.rank()) * batch; first < N;
       first += int64_t(comm.size()) * batch) {
    const int B = int(std::min<int64_t>(batch, N - first));
    for (int b = 0; b < B; ++b) idx[size_t(b)] = first + b, key[size_t(b)] = uint64_t(first + b);
    decode_batch(set.pixels.data(), set.geom, idx.data(), key.data(), B, bin_seed, x.data());
    vae.evaluate_elbo(x.data(), B, noise_seed, key.data(), elbo.data(), ll.data(), kl.data());
    for (int b = 0; b < B; ++b)
      s[0] += elbo[size_t(b)], s[1] += ll[size_t(b)], s[2] += kl[size_t(b)];
    vae.encode(x.data(), B, mu.data(), lv.data());
    for (int b = 0; b < B; ++b)
      for (int d = 0; d < L; ++d) {
        const double m = mu[size_t(b) * L + d], v = lv[size_t(b) * L + d];
        mu_sum[d] += m, mu_sq[d] += m * m;
        kl_dim[d] += 0.5 * (m * m + std::exp(v) - v - 1.0);  // KL of this dimension
      }
    for (int b = 0; b < B; ++b)
      s[3] += vae.iw_log_likelihood(x.data() + size_t(b) * D, K, noise_seed, key[size_t(b)]);
    done += B;
    if (print) {
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("\r  rank 0: %lld images  iw log-likelihood so far %.2f  (%.0f s)",
                  (long long)done, s[3] / double(done), secs);
      std::fflush(stdout);
    }
  }
  if (print) std::printf("\n");
  comm.allreduce(s.data(), s.size(), ReduceOp::sum);
  LikelihoodFigures f;
  f.images = N;
  f.elbo = s[0] / double(N), f.log_px_given_z = s[1] / double(N), f.kl = s[2] / double(N);
  f.iw = s[3] / double(N);
  f.kl_dim_min = 1e300;
  for (int d = 0; d < L; ++d) {  // active units: Cov_x(E_q[z]) > 0.01 per dimension
    const double m = mu_sum[d] / double(N);
    if (mu_sq[d] / double(N) - m * m > 0.01) ++f.active;
    f.kl_dim_min = std::min(f.kl_dim_min, kl_dim[d] / double(N));
    f.kl_dim_max = std::max(f.kl_dim_max, kl_dim[d] / double(N));
  }
  return f;
}

namespace {

// n latent draws of the chosen prior (host, (n, latent)); "aggregate" encodes images of train.
std::vector<float> prior_draws(LoadedModel& m, const std::string& prior, int n, uint64_t seed,
                               const PriorNormalizer* learned, const ImageSet* train) {
  const Config& c = m.config;
  const int L = c.model.latent;
  if (prior == "learned") return resample_states(*learned, L, n, seed);
  std::vector<float> z(size_t(n) * L);
  if (prior == "aggregate") {
    // z ~ q(z|x) for training images drawn uniformly: a draw of the aggregated posterior.
    Vae<float>& vae = *m.model.vae;
    const int batch = vae.encoder().max_batch();
    const int64_t D = train->geom.pixels();
    std::vector<float> x(size_t(batch) * D), mu(size_t(batch) * L), lv(mu.size()), eps(mu.size());
    std::vector<int64_t> idx(static_cast<size_t>(batch));
    std::vector<uint64_t> key(static_cast<size_t>(batch));
    const size_t blocks = (size_t(n) + 3) / 4;  // random_words gives 4 words per block
    std::vector<uint32_t> words(4 * blocks);
    random_words(seed, stream_id(rng_purpose::prior_sample, 3), 0, blocks, words.data());
    for (int first = 0; first < n; first += batch) {
      const int B = std::min(batch, n - first);
      for (int b = 0; b < B; ++b) idx[size_t(b)] = int64_t(words[size_t(first + b)] % train->count);
      decode_batch(train->pixels.data(), train->geom, idx.data(), key.data(), B,
                   c.data.binarize == "dynamic" ? int64_t(seed) : -1, x.data());
      vae.encode(x.data(), B, mu.data(), lv.data());
      normal_fill(seed, stream_id(rng_purpose::prior_sample, 4), uint64_t(first) * L, size_t(B) * L,
                  eps.data());
      for (size_t j = 0; j < size_t(B) * L; ++j)
        z[size_t(first) * L + j] = mu[j] + std::exp(0.5f * lv[j]) * eps[j];
    }
    return z;
  }
  normal_fill(seed, stream_id(rng_purpose::prior_sample, 1), 0, z.size(), z.data());
  return z;
}

// Generated images (n, D) in [0, 1]: decoder means or generator outputs, batch by batch. An
// autoregressive decoder draws its pixels one by one (image i from pixel streams i of seed) and
// gives their probabilities.
std::vector<float> generate(LoadedModel& m, const std::vector<float>& z, int n, uint64_t seed) {
  const int L = m.config.model.latent;
  const int64_t D = m.geom.pixels();
  std::vector<float> img(size_t(n) * D);
  const int batch = m.model.trained()[0]->max_batch();
  for (int first = 0; first < n; first += batch) {
    const int B = std::min(batch, n - first);
    if (m.model.gan)
      m.model.gan->generate(z.data() + size_t(first) * L, B, img.data() + size_t(first) * D);
    else
      m.model.vae->decode_mean(z.data() + size_t(first) * L, B, img.data() + size_t(first) * D,
                               seed, uint64_t(first));
  }
  return img;
}

std::vector<float> intensities(const ImageSet& set, int64_t n) {
  const int64_t D = set.geom.pixels();
  std::vector<float> x(size_t(n) * D);
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::vector<uint64_t> key(static_cast<size_t>(n), 0);
  decode_batch(set.pixels.data(), set.geom, idx.data(), key.data(), int(n), -1, x.data());
  return x;
}

struct QualityFigures {
  std::string prior;
  Mmd mmd;
  std::vector<double> hist;
  double class_kl = 0;
};

// What generated images are compared with, decoded once for every prior evaluated.
struct QualityReference {
  std::vector<float> test, train;  // intensities in [0, 1]
  std::vector<int> train_labels;
  std::vector<double> test_hist;  // empty when either set lacks labels
  int classes = 0;
};

QualityReference quality_reference(const ImageSet& test, const ImageSet& train) {
  QualityReference r;
  r.test = intensities(test, test.count);
  if (train.labels.empty() || test.labels.empty()) return r;
  r.train = intensities(train, train.count);
  r.train_labels.assign(train.labels.begin(), train.labels.end());
  r.classes = 1 + *std::max_element(r.train_labels.begin(), r.train_labels.end());
  r.test_hist =
      class_histogram(std::vector<int>(test.labels.begin(), test.labels.end()), r.classes);
  return r;
}

QualityFigures quality(LoadedModel& m, const std::string& prior, int n, const QualityReference& ref,
                       const ImageSet& train, const PriorNormalizer* learned) {
  QualityFigures q;
  q.prior = prior;
  const int D = int(m.geom.pixels());
  const std::vector<float> gen =
      generate(m, prior_draws(m, prior, n, 777, learned, &train), n, 777);
  q.mmd = gaussian_mmd(*m.backend, gen.data(), n, ref.test.data(), int64_t(ref.test.size()) / D, D);
  if (!ref.test_hist.empty()) {
    q.hist = class_histogram(nearest_labels(*m.backend, gen.data(), n, ref.train.data(),
                                            int64_t(ref.train_labels.size()), ref.train_labels, D),
                             ref.classes);
    q.class_kl = histogram_kl(q.hist, ref.test_hist);
  }
  return q;
}

// eval.json: one object through nlohmann::json (io/output/json_io.h), numbers to 10 significant
// digits as the file has always had; a non-finite figure is null, named in the object's
// "nonfinite" note.
void put_eval_number(Json& json, const std::string& key, double v) {
  put_number(json, key, v, 10);
}

// One row of the ratio check: T against the exact log ratio at n draws of q(z) or of p(z).
struct RatioFigures {
  const char* from;  // "aggregate" (draws of q) or "standard" (draws of p)
  double mae = 0, mean_t = 0, mean_exact = 0;
};

// T(z) against the exact log q(z)/p(z) of the aggregated posterior q(z) = (1/N) sum_n
// N(z; mu_n, sigma_n^2), the mixture of the training set's encoder Gaussians, at n draws of q and
// n draws of p. The exact ratio is far spikier than any smooth T: reported, not thresholded.
std::vector<RatioFigures> ratio_check(LoadedModel& m, const ImageSet& train, int n) {
  const Config& c = m.config;
  const int L = c.model.latent;
  Vae<float>& vae = *m.model.vae;
  const int64_t N = train.count, D = train.geom.pixels();
  const int batch = vae.encoder().max_batch();
  std::vector<float> mu(size_t(N) * L), lv(size_t(N) * L), x(size_t(batch) * D);
  std::vector<int64_t> idx(static_cast<size_t>(batch));
  std::vector<uint64_t> key(static_cast<size_t>(batch), 0);
  for (int64_t first = 0; first < N; first += batch) {
    const int B = int(std::min<int64_t>(batch, N - first));
    std::iota(idx.begin(), idx.begin() + B, first);
    decode_batch(train.pixels.data(), train.geom, idx.data(), key.data(), B,
                 c.data.binarize == "dynamic" ? c.eval.binarize_seed : -1, x.data());
    vae.encode(x.data(), B, mu.data() + first * L, lv.data() + first * L);
  }
  auto exact_log_ratio = [&](const float* z) {
    // log q(z) = logsumexp_n log N(z; mu_n, e^lv_n) - log N;  log p(z) = log N(z; 0, I)
    std::vector<double> lq(static_cast<size_t>(N));
    double lp = 0;
    for (int d = 0; d < L; ++d) lp -= 0.5 * (std::log(2 * M_PI) + double(z[d]) * z[d]);
    for (int64_t k = 0; k < N; ++k) {
      double s = 0;
      for (int d = 0; d < L; ++d) {
        const double v = lv[size_t(k) * L + d], e = z[d] - mu[size_t(k) * L + d];
        s -= 0.5 * (std::log(2 * M_PI) + v + e * e * std::exp(-v));
      }
      lq[size_t(k)] = s;
    }
    const double mx = *std::max_element(lq.begin(), lq.end());
    double s = 0;
    for (double v : lq) s += std::exp(v - mx);
    return mx + std::log(s / double(N)) - lp;
  };
  std::vector<RatioFigures> rows;
  for (const char* from : {"aggregate", "standard"}) {
    const std::vector<float> z = prior_draws(m, from, n, 4242, nullptr, &train);
    std::vector<double> t(static_cast<size_t>(n));
    for (int first = 0; first < n; first += batch) {
      const int B = std::min(batch, n - first);
      m.model.latent_disc->output_and_input_grad(z.data() + size_t(first) * L, B, DiscOutput::logit,
                                                 0.0f, nullptr, t.data() + first);
    }
    double err = 0, mt = 0, me = 0;
    for (int i = 0; i < n; ++i) {
      const double e = exact_log_ratio(z.data() + size_t(i) * L);
      err += std::abs(t[size_t(i)] - e) / n, mt += t[size_t(i)] / n, me += e / n;
    }
    const char* name = std::string(from) == "aggregate" ? "q(z)" : "p(z)";
    std::printf(
        "T vs exact log q(z)/p(z) at %d draws of %s: mean |T - exact| %.3f, mean T %.3f, "
        "mean exact %.3f\n",
        n, name, err, mt, me);
    rows.push_back({from, err, mt, me});
  }
  return rows;
}

// What evaluate() found; eval_json writes it. A part is present when it was computed.
struct EvalReport {
  std::string family;
  int64_t images = 0;
  double bits_per_nat = 0;                      // per dimension: 1 / (D ln 2)
  std::optional<LikelihoodFigures> likelihood;  // VAE families
  int iw_samples = 0;
  std::optional<PriorNormalizer> normalizer;  // --normalize-prior
  int ais_chains = 0;
  std::vector<RatioFigures> ratio;      // --ratio-check
  std::vector<QualityFigures> quality;  // --quality
  std::optional<AisFigures> ais;        // --ais
  std::vector<BdmcRow> bdmc;            // --bdmc
  double bdmc_target = 0;
};

// eval.json: every figure of the report, built here and nowhere else, as one JSON object.
Json eval_json(const EvalReport& r) {
  Json json = {{"family", r.family}, {"images", r.images}};
  const double iw = r.likelihood ? r.likelihood->iw : 0.0;
  if (const auto& f = r.likelihood) {
    put_eval_number(json, "elbo", f->elbo);
    put_eval_number(json, "log_px_given_z", f->log_px_given_z);
    put_eval_number(json, "kl", f->kl);
    put_eval_number(json, "iw_log_likelihood", f->iw);
    put_value(json, "iw_samples", r.iw_samples);
    put_value(json, "active_units", f->active);
    put_eval_number(json, "kl_dim_min", f->kl_dim_min);
    put_eval_number(json, "kl_dim_max", f->kl_dim_max);
    put_eval_number(json, "elbo_bits_per_dim", -f->elbo * r.bits_per_nat);
    put_eval_number(json, "iw_bits_per_dim", -f->iw * r.bits_per_nat);
  }
  if (const auto& pn = r.normalizer) {
    put_eval_number(json, "log_z", pn->log_z);
    put_eval_number(json, "log_z_spread", pn->spread);
    put_eval_number(json, "log_z_std_error", pn->runs[0].std_error);
    put_eval_number(json, "ais_ess", pn->runs[0].ess);
    put_value(json, "ais_chains", r.ais_chains);
    put_eval_number(json, "iw_log_likelihood_normalized", iw - pn->log_z);
  }
  for (const RatioFigures& x : r.ratio) {
    put_eval_number(json, std::string("ratio_mae_") + x.from, x.mae);
    put_eval_number(json, std::string("ratio_mean_t_") + x.from, x.mean_t);
    put_eval_number(json, std::string("ratio_mean_exact_") + x.from, x.mean_exact);
  }
  if (const auto& a = r.ais) {
    Json j = {
        {"images", a->images}, {"chains_per_image", a->chains}, {"temperatures", a->temperatures}};
    put_eval_number(j, "log_likelihood", a->log_px);
    if (const auto& pn = r.normalizer)
      put_eval_number(j, "log_likelihood_normalized", a->log_px - pn->log_z);
    put_eval_number(j, "std_error", a->std_error);
    put_eval_number(j, "ess", a->ess);
    put_eval_number(j, "acceptance", a->acceptance);
    put_eval_number(j, "seconds_per_image", a->seconds_per_image);
    put_value(json, "ais_log_likelihood", std::move(j));
  }
  if (!r.bdmc.empty()) {
    Json rows = Json::array();
    for (const BdmcRow& b : r.bdmc) {
      Json j = {{"temperatures", b.temperatures}};
      put_eval_number(j, "lower", b.lower);
      put_eval_number(j, "upper", b.upper);
      put_eval_number(j, "gap", b.upper - b.lower);
      put_eval_number(j, "lower_std_error", b.lower_se);
      put_eval_number(j, "upper_std_error", b.upper_se);
      rows.push_back(std::move(j));
    }
    put_value(json, "bdmc", std::move(rows));
    put_eval_number(json, "bdmc_target", r.bdmc_target);
  }
  if (!r.quality.empty()) {
    Json figures = Json::array();
    for (const QualityFigures& q : r.quality) {
      Json entry = {{"prior", q.prior}};
      put_eval_number(entry, "mmd2", q.mmd.mmd2);
      put_eval_number(entry, "bandwidth", q.mmd.bandwidth);
      if (!q.hist.empty()) {
        put_eval_number(entry, "class_kl", q.class_kl);  // inf: a class the test set lacks
        put_numbers(entry, "class_histogram", q.hist, 10);
      }
      figures.push_back(std::move(entry));
    }
    put_value(json, "quality", std::move(figures));
  }
  return json;
}

// The ELBO, its terms and the importance-weighted bound; rank 0 prints them.
LikelihoodFigures eval_likelihood(LoadedModel& m, const ImageSet& set, int K, bool implicit,
                                  double bpd, Communicator& comm) {
  const bool root = comm.rank() == 0;
  const Config& c = m.config;
  if (root) std::printf("K = %d importance samples per image\n", K);
  const LikelihoodFigures f =
      likelihood_figures(*m.model.vae, set, c, c.eval.iw_batch, K, comm, root);
  if (!root) return f;
  const char* un = implicit ? " (unnormalized: log p(z) + T(z))" : "";
  std::printf("test elbo                   %.3f nats  (%.4f bits/dim)%s\n", f.elbo, -f.elbo * bpd,
              un);
  std::printf("  log p(x|z)                %.3f   kl %.3f\n", f.log_px_given_z, f.kl);
  std::printf("iw log-likelihood (K=%d)  %.3f nats  (%.4f bits/dim)%s\n", K, f.iw, -f.iw * bpd, un);
  std::printf("active units                %d of %d\n", f.active, c.model.latent);
  std::printf("KL per dimension            min %.4f  max %.4f nats (averaged over the images)\n",
              f.kl_dim_min, f.kl_dim_max);
  return f;
}

// The learned prior's log Z by AIS, and the log-likelihood it normalizes (iw); rank 0 prints.
PriorNormalizer eval_normalizer(const EvalOptions& o, LoadedModel& m, double iw, double bpd,
                                Communicator& comm) {
  const bool root = comm.rank() == 0;
  if (root)
    std::printf(
        "normalizing the learned prior: AIS, %d chains x %d temperatures, %d leapfrog "
        "steps, %d run(s)\n",
        o.ais.chains, o.ais.temperatures, o.ais.leapfrog, o.ais_runs);
  const PriorNormalizer pn =
      normalize_prior(*m.model.latent_disc, m.config.model.latent, o.ais, o.ais_runs, comm, root);
  if (root) {
    std::printf(
        "log Z                       %.4f  (spread %.4f over %d runs; first run: "
        "standard error %.4f, ESS %.1f of %d)\n",
        pn.log_z, pn.spread, o.ais_runs, pn.runs[0].std_error, pn.runs[0].ess, o.ais.chains);
    std::printf("iw log-likelihood normalized %.3f nats  (%.4f bits/dim) = %.3f - log Z\n",
                iw - pn.log_z, -(iw - pn.log_z) * bpd, iw);
  }
  return pn;
}

void print_quality(const QualityFigures& q, int n, int64_t against) {
  std::printf("sample quality (%s, %d images vs %lld): MMD^2 %.5f (bandwidth %.3f)",
              q.prior.c_str(), n, (long long)against, q.mmd.mmd2, q.mmd.bandwidth);
  if (!q.hist.empty()) {
    std::printf("  class KL(generated || test) %.4f nats  classes:", q.class_kl);
    for (double h : q.hist) std::printf(" %.3f", h);
  }
  std::printf("\n");
}

// Sample quality of every prior the model has (a gan: its generator), printed as computed.
std::vector<QualityFigures> eval_quality(const EvalOptions& o, LoadedModel& m, const ImageSet& set,
                                         const ImageSet& train, const PriorNormalizer* learned) {
  const bool implicit = m.model.vae && m.model.vae->prior_kind() == PriorKind::implicit;
  const QualityReference ref = quality_reference(set, train);
  std::vector<std::string> priors = {"standard"};
  if (implicit) priors.push_back("aggregate");
  if (o.normalize_prior) priors.push_back("learned");
  if (m.model.gan) priors = {"generator"};
  std::vector<QualityFigures> all;
  for (const std::string& prior : priors) {
    QualityFigures q = quality(m, prior == "generator" ? "standard" : prior, o.quality_images, ref,
                               train, learned);
    q.prior = prior;  // a gan's draws are the standard ones, reported as its generator's
    print_quality(q, o.quality_images, set.count);
    all.push_back(std::move(q));
  }
  return all;
}

// --ais and --bdmc into r; rank 0 prints.
void eval_marginal(const EvalOptions& o, EvalReport& r, const ImageSet& set, bool implicit,
                   Communicator& comm) {
  const bool root = comm.rank() == 0;
  MarginalOptions mo = o.marginal;
  mo.leapfrog = o.ais.leapfrog, mo.step_size = o.ais.step_size;
  if (mo.chains > 0) {
    if (root)
      std::printf(
          "AIS log p(x): %d chains per image (after %d pilot chains), %d temperatures, %d "
          "leapfrog steps\n",
          mo.chains, AisOptions{}.pilot, mo.temperatures, mo.leapfrog);
    const AisFigures a = ais_log_likelihood(o.checkpoint, set, mo, comm, root);
    r.ais = a;
    if (root) {
      std::printf(
          "ais log-likelihood          %.3f nats  (+- %.3f standard error; ESS %.1f of %d "
          "per image; acceptance %.2f; %.2f s/image on rank 0)%s\n",
          a.log_px, a.std_error, a.ess, a.chains, a.acceptance, a.seconds_per_image,
          implicit ? " (unnormalized: log Z + log p(x))" : "");
      if (r.normalizer)
        std::printf("ais log-likelihood normalized %.3f nats = %.3f - log Z\n",
                    a.log_px - r.normalizer->log_z, a.log_px);
    }
  }
  if (mo.bdmc > 0) {
    if (mo.chains == 0) mo.chains = 16;
    if (root)
      std::printf("BDMC: %d images simulated from the model, %d chains each way per image\n",
                  mo.bdmc, mo.chains);
    r.bdmc = bdmc_bounds(o.checkpoint, mo, comm, root);
    r.bdmc_target = mo.bdmc_target;
    if (root) {
      const BdmcRow& b = r.bdmc.back();
      if (b.upper - b.lower < mo.bdmc_target)
        std::printf("BDMC gap %.3f < %.3f nats at %d temperatures\n", b.upper - b.lower,
                    mo.bdmc_target, b.temperatures);
      else
        std::printf(
            "BDMC gap %.3f is still above %.3f nats at %d temperatures: raise "
            "--ais-schedule\n",
            b.upper - b.lower, mo.bdmc_target, b.temperatures);
    }
  }
}

std::string eval_data_pattern(const EvalOptions& o, const Config& c) {
  return !o.data.empty()           ? o.data
         : o.split == "test"       ? c.data.test
         : o.split == "validation" ? c.data.validation
                                   : c.data.train;
}

}  // namespace

int evaluate(const EvalOptions& o, Communicator& comm) {
  const bool root = comm.rank() == 0;
  LoadedModel m = load_model_checkpoint(o.checkpoint, 0);  // batches of eval.iw_batch
  const Config& c = m.config;
  if (m.model.gan && o.iw_samples > 0)
    throw std::runtime_error("--iw: " + o.checkpoint +
                             " is a gan, which has no likelihood to bound; evaluate its samples "
                             "with --quality N");
  if (m.model.gan && o.quality_images == 0 && o.marginal.chains == 0 && o.marginal.bdmc == 0)
    throw std::runtime_error(o.checkpoint +
                             " is a gan: a gan is evaluated by sample quality (--quality N, e.g. "
                             "--quality 10000) or, under a Gaussian observation model, by AIS "
                             "(--ais N --ais-gaussian SIGMA)");
  const bool implicit = m.model.vae && m.model.vae->prior_kind() == PriorKind::implicit;
  if (o.normalize_prior && !implicit)
    throw std::runtime_error("--normalize-prior: " + o.checkpoint + " is a " + c.model.family +
                             "; only implicit_prior_vae has a learned prior to normalize");
  if (o.ratio_check > 0 && !implicit)  // before the data and the likelihood passes
    throw std::runtime_error("--ratio-check: " + o.checkpoint + " is a " + c.model.family +
                             "; only implicit_prior_vae has a density ratio to check");
  if ((o.marginal.chains > 0 || o.marginal.bdmc > 0) && m.model.gan &&
      o.marginal.gaussian_sigma <= 0)
    throw std::runtime_error(std::string(o.marginal.chains > 0 ? "--ais" : "--bdmc") + ": " +
                             o.checkpoint +
                             " is a gan, which has no likelihood p(x|z) of its own; give one with "
                             "--ais-gaussian SIGMA");
  if (o.marginal.bdmc > 0 && implicit)  // its prior cannot be sampled exactly
    throw std::runtime_error("--bdmc: " + o.checkpoint +
                             " is an implicit_prior_vae, whose prior p(z) exp(T(z)) / Z has no "
                             "exact sampler to simulate data from; use --ais --normalize-prior");
  const std::string pattern = eval_data_pattern(o, c);
  const int64_t max_images = o.max_images >= 0 ? o.max_images : c.eval.max_images;
  const ImageSet set = load_image_set(pattern, max_images, "--data");
  require_same_images(set.geom, pattern, m, o.checkpoint);
  EvalReport r;
  r.family = c.model.family, r.images = set.count;
  r.bits_per_nat = 1.0 / (double(set.geom.pixels()) * std::log(2.0));
  r.iw_samples = o.iw_samples > 0 ? o.iw_samples : c.eval.iw_samples;
  r.ais_chains = o.ais.chains;
  if (root)
    std::printf("distvae eval: %s, %lld images from %s, %d rank(s)\n", c.model.family.c_str(),
                (long long)set.count, pattern.c_str(), comm.size());
  if (m.model.vae)
    r.likelihood = eval_likelihood(m, set, r.iw_samples, implicit, r.bits_per_nat, comm);
  if (o.normalize_prior)
    r.normalizer =
        eval_normalizer(o, m, r.likelihood ? r.likelihood->iw : 0.0, r.bits_per_nat, comm);
  if (o.marginal.chains > 0 || o.marginal.bdmc > 0) eval_marginal(o, r, set, implicit, comm);
  // Read once for the checks below: the images the model trained on (data.max_images of them),
  // which also keeps a large set's float copy within memory.
  ImageSet train;
  if ((o.ratio_check > 0 || o.quality_images > 0) && root)
    train = load_image_set(c.data.train, c.data.max_images, "data.train");
  if (o.ratio_check > 0 && root) r.ratio = ratio_check(m, train, o.ratio_check);
  if (o.quality_images > 0 && root)
    r.quality = eval_quality(o, m, set, train, r.normalizer ? &*r.normalizer : nullptr);
  if (root && !o.out_json.empty()) write_json_file(o.out_json, eval_json(r));
  return 0;
}

int sample(const SampleOptions& o, Communicator& comm) {
  LoadedModel m = load_model_checkpoint(o.checkpoint, 0);
  const ImageGeom& g = m.geom;
  const bool implicit = m.model.vae && m.model.vae->prior_kind() == PriorKind::implicit;
  if (o.prior != "standard" && !implicit)
    throw std::runtime_error("--prior " + o.prior + ": " + o.checkpoint + " is a " +
                             m.config.model.family +
                             "; learned and aggregate priors belong to implicit_prior_vae");
  PriorNormalizer pn;
  if (o.prior == "learned")
    pn = normalize_prior(*m.model.latent_disc, m.config.model.latent, o.ais, 1, comm,
                         comm.rank() == 0);
  if (comm.rank() != 0) return 0;
  ImageSet train;
  if (o.prior == "aggregate") train = load_image_set(m.config.data.train, 0, "data.train");
  const std::vector<float> z = prior_draws(m, o.prior, o.n, uint64_t(o.seed), &pn, &train);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<float> img = generate(m, z, o.n, uint64_t(o.seed));
  if (m.model.vae && m.model.vae->decoder().autoregressive())
    std::printf("drew %d images pixel by pixel (%lld passes of the masked layers) in %.2f s\n", o.n,
                (long long)(g.height * g.width),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (o.out_png.size() > 3 && o.out_png.ends_with(".h5")) {
    write_float_matrices(o.out_png, {{"z", o.n, m.config.model.latent, z.data()},
                                     {"images", o.n, g.pixels(), img.data()}});
    std::printf("wrote %d draws z and their images (%s prior) to %s\n", o.n, o.prior.c_str(),
                o.out_png.c_str());
    return 0;
  }
  const int cols = int(std::ceil(std::sqrt(double(o.n))));
  write_png(o.out_png,
            make_grid(img.data(), o.n, int(g.channels), int(g.height), int(g.width), cols, 2));
  std::printf("wrote %d samples (%s prior) to %s\n", o.n, o.prior.c_str(), o.out_png.c_str());
  return 0;
}

}  // namespace distvae
