// Per parameter tensor: the variance over independent noise draws of each gradient element,
// averaged over the tensor, for both estimators of the same ELBO gradient (estimator A, L = 1).
#include "launch/eval/gradvar.h"

#include <cstdio>
#include <numeric>

#include "io/data/image_set.h"
#include "io/hdf5/checkpoint.h"
#include "launch/train/model_setup.h"

namespace distvae {

int gradient_variance(const std::string& checkpoint, const std::string& data, int batch,
                      int draws) {
  // Both estimators then estimate the same gradient: estimator A, one sample.
  LoadedModel m = load_model_checkpoint(checkpoint, batch, [](VaeSpec& s) {
    s.estimator = Estimator::A;
    s.samples = 1;
  });
  const Config& c = m.config;
  Vae<float>& vae = require_vae(m, checkpoint, "distvae gradvar");
  m.model.set_training(true);  // the gradients of a training step, batch norms included
  Backend<float>* backend = m.backend.get();
  const std::string pattern = data.empty() ? c.data.validation : data;
  const ImageSet set = load_image_set(pattern, batch, "--data");
  require_same_images(set.geom, pattern, m, checkpoint);
  const int B = int(set.count);
  const int64_t D = set.geom.pixels();
  std::vector<float> x(size_t(B) * D);
  std::vector<int64_t> idx(static_cast<size_t>(B));
  std::iota(idx.begin(), idx.end(), 0);
  std::vector<uint64_t> key(static_cast<size_t>(B));
  decode_batch(set.pixels.data(), set.geom, idx.data(), key.data(), B,
               c.data.binarize == "dynamic" ? c.eval.binarize_seed : -1, x.data());

  ParamStore<float>& ps = vae.encoder().params();
  const size_t n = ps.size();
  // Running sums of g and g^2 per element, for each estimator.
  std::vector<double> sum[2], sq[2];
  for (int e = 0; e < 2; ++e) sum[e].assign(n, 0.0), sq[e].assign(n, 0.0);
  std::vector<float> g(n);
  for (int s = 0; s < draws; ++s) {
    for (int b = 0; b < B; ++b) key[size_t(b)] = uint64_t(s) * uint64_t(B) + uint64_t(b);
    VaeStepArgs a;
    a.seed = 99, a.noise_keys = key.data();
    vae.train_step(x.data(), B, a);  // reparameterized
    backend->to_host(ps.grads(), g.data(), n);
    for (size_t i = 0; i < n; ++i) sum[0][i] += g[i], sq[0][i] += double(g[i]) * g[i];
    vae.score_function_encoder_grad(x.data(), B, 99, key.data());  // same z draws
    backend->to_host(ps.grads(), g.data(), n);
    for (size_t i = 0; i < n; ++i) sum[1][i] += g[i], sq[1][i] += double(g[i]) * g[i];
  }
  std::printf("encoder gradient variance over %d draws, batch %d (estimator A ELBO, L = 1)\n",
              draws, B);
  std::printf("%-28s %14s %14s %10s\n", "tensor", "reparam", "score-function", "ratio");
  double worst_ratio = 1e300;
  for (const ParamSlice& sl : ps.slices()) {
    if (!sl.trainable) continue;  // batch norm's running averages have no gradient
    double v[2] = {0, 0};
    for (int e = 0; e < 2; ++e)
      for (size_t i = sl.offset; i < sl.offset + sl.size; ++i) {
        const double m = sum[e][i] / draws;
        v[e] += (sq[e][i] / draws - m * m) * draws / (draws - 1.0);
      }
    for (double& x : v) x /= double(sl.size);
    const double ratio = v[1] / v[0];
    worst_ratio = std::min(worst_ratio, ratio);
    std::printf("%-28s %14.4e %14.4e %10.1f\n", sl.name.c_str(), v[0], v[1], ratio);
  }
  std::printf("smallest score-function / reparameterization variance ratio: %.1f\n", worst_ratio);
  return 0;
}

}  // namespace distvae
