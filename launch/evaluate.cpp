// Evaluation on the literature's protocol: images binarized once with a fixed seed, ELBO and the
// importance-weighted bound log (1/K) sum_k p(x, z_k) / q(z_k | x) per image.
#include "launch/evaluate.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <stdexcept>

#include "core/rng.h"
#include "io/checkpoint.h"
#include "io/image.h"
#include "io/png.h"
#include "launch/config.h"
#include "launch/image_set.h"
#include "launch/vae_setup.h"

namespace distvae {

int evaluate(const EvalOptions& o) {
  LoadedVae m = load_vae_checkpoint(o.checkpoint, 0);  // batches of eval.iw_batch
  const int batch = m.config.eval.iw_batch;
  const Config& c = m.config;
  Vae<float>& vae = *m.vae;
  const std::string pattern = !o.data.empty()           ? o.data
                              : o.split == "test"       ? c.data.test
                              : o.split == "validation" ? c.data.validation
                                                        : c.data.train;
  const int64_t max_images = o.max_images >= 0 ? o.max_images : c.eval.max_images;
  const ImageSet set = load_image_set(pattern, max_images, "--data");
  require_same_images(set.geom, pattern, m, o.checkpoint);
  const int K = o.iw_samples > 0 ? o.iw_samples : c.eval.iw_samples;

  const int64_t N = set.count, D = set.geom.pixels();
  const int L = c.model.latent;
  const int64_t bin_seed = c.data.binarize == "dynamic" ? c.eval.binarize_seed : -1;
  const uint64_t noise_seed = uint64_t(c.eval.binarize_seed) + 1;
  std::printf("distvae eval: %lld images from %s, K = %d importance samples\n", (long long)N,
              pattern.c_str(), K);
  std::vector<float> x(size_t(batch) * D), mu(size_t(batch) * L);
  std::vector<int64_t> idx(static_cast<size_t>(batch));
  std::vector<uint64_t> key(static_cast<size_t>(batch));
  std::vector<double> elbo(static_cast<size_t>(batch)), ll(static_cast<size_t>(batch)),
      kl(static_cast<size_t>(batch));
  double sum_elbo = 0, sum_ll = 0, sum_kl = 0, sum_iw = 0;
  std::vector<double> mu_sum(size_t(L), 0.0), mu_sq(size_t(L), 0.0), kl_dim(size_t(L), 0.0);
  std::vector<float> lv(mu.size());
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t first = 0; first < N; first += batch) {
    const int B = int(std::min<int64_t>(batch, N - first));
    for (int b = 0; b < B; ++b) idx[size_t(b)] = first + b, key[size_t(b)] = uint64_t(first + b);
    decode_batch(set.pixels.data(), set.geom, idx.data(), key.data(), B, bin_seed, x.data());
    vae.evaluate_elbo(x.data(), B, noise_seed, key.data(), elbo.data(), ll.data(), kl.data());
    for (int b = 0; b < B; ++b)
      sum_elbo += elbo[size_t(b)], sum_ll += ll[size_t(b)], sum_kl += kl[size_t(b)];
    vae.encode(x.data(), B, mu.data(), lv.data());
    for (int b = 0; b < B; ++b)
      for (int d = 0; d < L; ++d) {
        const double m = mu[size_t(b) * L + d], v = lv[size_t(b) * L + d];
        mu_sum[size_t(d)] += m, mu_sq[size_t(d)] += m * m;
        kl_dim[size_t(d)] += 0.5 * (m * m + std::exp(v) - v - 1.0);  // KL of this dimension
      }
    for (int b = 0; b < B; ++b)
      sum_iw += vae.iw_log_likelihood(x.data() + size_t(b) * D, K, noise_seed, key[size_t(b)]);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("\r  %lld/%lld images  iw log-likelihood so far %.2f  (%.0f s)",
                (long long)(first + B), (long long)N, sum_iw / double(first + B), secs);
    std::fflush(stdout);
  }
  std::printf("\n");
  int active = 0;  // active units: Cov_x(E_q[z]) > 0.01 per dimension
  for (int d = 0; d < L; ++d) {
    const double m = mu_sum[size_t(d)] / double(N);
    if (mu_sq[size_t(d)] / double(N) - m * m > 0.01) ++active;
  }
  const double bpd = 1.0 / (double(D) * std::log(2.0));
  const double e = sum_elbo / double(N), iw = sum_iw / double(N);
  std::printf("test elbo                   %.3f nats  (%.4f bits/dim)\n", e, -e * bpd);
  std::printf("  log p(x|z)                %.3f   kl %.3f\n", sum_ll / double(N),
              sum_kl / double(N));
  std::printf("iw log-likelihood (K=%d)  %.3f nats  (%.4f bits/dim)\n", K, iw, -iw * bpd);
  std::printf("active units                %d of %d\n", active, L);
  double kl_min = 1e300, kl_max = 0;
  for (double& k : kl_dim)
    k /= double(N), kl_min = std::min(kl_min, k), kl_max = std::max(kl_max, k);
  std::printf("KL per dimension            min %.4f  max %.4f nats (averaged over the images)\n",
              kl_min, kl_max);
  if (!o.out_json.empty()) {
    std::ofstream f(o.out_json);
    f << "{\"images\": " << N << ", \"elbo\": " << e << ", \"iw_log_likelihood\": " << iw
      << ", \"iw_samples\": " << K << ", \"active_units\": " << active
      << ", \"kl_dim_min\": " << kl_min << ", \"kl_dim_max\": " << kl_max
      << ", \"elbo_bits_per_dim\": " << -e * bpd << ", \"iw_bits_per_dim\": " << -iw * bpd << "}\n";
  }
  return 0;
}

int sample(const std::string& checkpoint, int n, const std::string& out_png, int64_t seed) {
  LoadedVae m = load_vae_checkpoint(checkpoint, n);
  const Config& c = m.config;
  const ImageGeom& g = m.geom;
  Vae<float>& vae = *m.vae;
  const int L = c.model.latent;
  std::vector<float> z(size_t(n) * L), img(size_t(n) * g.pixels());
  normal_fill(uint64_t(seed), stream_id(rng_purpose::prior_sample, 1), 0, z.size(), z.data());
  vae.decode_mean(z.data(), n, img.data());
  const int cols = int(std::ceil(std::sqrt(double(n))));
  write_png(out_png,
            make_grid(img.data(), n, int(g.channels), int(g.height), int(g.width), cols, 2));
  std::printf("wrote %d samples to %s\n", n, out_png.c_str());
  return 0;
}

}  // namespace distvae
