// The autoregressive decoder's sampler (Vae::draw_images) against the decoder's own parallel pass:
// over all 2^4 images of a 2x2 picture, p(x|z) from one pass sums to 1 (the masks make a
// normalized distribution), the sampler's draws follow it, and the probabilities it reports are
// the pass's conditionals at the drawn image. dnnl draws the same images as the reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/backends/reference.h"
#include "core/models/vae.h"
#include "core/rng.h"

namespace distvae {
namespace {

constexpr int kLatent = 2, kPixels = 4, kImages = 1 << kPixels;

LayerSpec layer(const std::string& type, int64_t out = 0) {
  LayerSpec s;
  s.type = type;
  s.out = out;
  return s;
}

LayerSpec masked(int64_t out, const char* mask) {
  LayerSpec s = layer("conv2d", out);
  s.kernel = 3, s.padding = 1, s.mask = mask;
  return s;
}

VaeSpec pixel_vae_spec() {
  VaeSpec spec;
  spec.image = Shape{1, 2, 2};
  spec.latent = kLatent;
  spec.encoder = {layer("linear", 4), layer("tanh")};
  LayerSpec to_map = layer("reshape");
  to_map.shape = {3, 2, 2};
  spec.decoder = {layer("linear", 3 * kPixels),
                  layer("tanh"),
                  to_map,
                  layer("autoregressive"),
                  masked(6, "A"),
                  layer("tanh"),
                  masked(1, "B")};
  spec.likelihood.kind = Likelihood::bernoulli;
  return spec;
}

// Parameters far from their initial scale, so the conditionals are far from 1/2 and from each
// other; the same values on every backend.
template <class T>
void jitter(Vae<T>& vae) {
  for (Network<T>* net : {&vae.encoder(), &vae.decoder()}) {
    const size_t n = net->params().size();
    std::vector<double> d(n);
    normal_fill(5, stream_id(rng_purpose::test, n), 0, n, d.data());
    std::vector<T> v(n);
    vae.backend().to_host(net->params().values(), v.data(), n);
    for (size_t i = 0; i < n; ++i) v[i] += T(0.4 * d[i]);
    vae.backend().to_device(v.data(), net->params().values(), n);
  }
}

// log p(x|z) of each of the 16 binary images at one z, from the decoder's parallel pass.
std::vector<double> exact_log_px(Vae<double>& vae, const std::vector<double>& z) {
  std::vector<double> zs, xs(size_t(kImages) * kPixels), f(kImages), df(kImages * kLatent);
  for (int i = 0; i < kImages; ++i) {
    zs.insert(zs.end(), z.begin(), z.end());
    for (int p = 0; p < kPixels; ++p) xs[size_t(i) * kPixels + p] = (i >> p) & 1;
  }
  vae.marginal_log_factor(zs.data(), xs.data(), kImages, f.data(), df.data());
  return f;
}

TEST(PixelSampler, DrawsFollowTheDecodersOwnLikelihood) {
  ReferenceBackend<double> be;
  constexpr int kBatch = 64, kBatches = 128, kDraws = kBatch * kBatches;
  Vae<double> vae(be, pixel_vae_spec(), kBatch);
  vae.init(3);
  jitter(vae);
  const std::vector<double> z = {0.7, -1.2};
  const std::vector<double> log_px = exact_log_px(vae, z);
  double total = 0, smallest = 1;
  for (double l : log_px) total += std::exp(l), smallest = std::min(smallest, std::exp(l));
  EXPECT_NEAR(total, 1.0, 1e-12) << "p(x|z) over every image does not sum to 1";
  ASSERT_GT(smallest, 1e-3) << "some image is too rare for the frequency check below";

  std::vector<double> zs;
  for (int b = 0; b < kBatch; ++b) zs.insert(zs.end(), z.begin(), z.end());
  std::vector<float> x(size_t(kBatch) * kPixels), prob(x.size());
  std::vector<int> count(kImages, 0);
  for (int r = 0; r < kBatches; ++r) {
    vae.draw_images(zs.data(), kBatch, 11, uint64_t(r) * kBatch, x.data(), prob.data());
    for (int b = 0; b < kBatch; ++b) {
      int code = 0;
      double log_q = 0;  // the sampler's conditionals at the image it drew
      for (int p = 0; p < kPixels; ++p) {
        const float v = x[size_t(b) * kPixels + p], q = prob[size_t(b) * kPixels + p];
        ASSERT_TRUE(v == 0.0f || v == 1.0f);
        code |= int(v) << p;
        log_q += std::log(v == 1.0f ? double(q) : 1.0 - double(q));
      }
      ++count[size_t(code)];
      EXPECT_NEAR(log_q, log_px[size_t(code)], 1e-5) << "image " << code;  // float probabilities
    }
  }
  double chi2 = 0;
  for (int i = 0; i < kImages; ++i) {
    const double p = std::exp(log_px[size_t(i)]), sd = std::sqrt(p * (1 - p) / kDraws);
    EXPECT_NEAR(count[size_t(i)] / double(kDraws), p, 5 * sd) << "image " << i;
    chi2 += std::pow(count[size_t(i)] - kDraws * p, 2) / (kDraws * p);
  }
  EXPECT_LT(chi2, 44.3) << "chi-square with 15 degrees of freedom beyond its 0.0001 quantile";
}

TEST(PixelSampler, DnnlDrawsWhatTheReferenceDraws) {
  ReferenceBackend<float> ref;
  const std::unique_ptr<Backend<float>> dnnl = make_backend("dnnl");
  constexpr int B = 32;
  Vae<float> a(ref, pixel_vae_spec(), B), b(*dnnl, pixel_vae_spec(), B);
  for (Vae<float>* v : {&a, &b}) v->init(3), jitter(*v);
  std::vector<float> z(size_t(B) * kLatent);
  normal_fill(7, stream_id(rng_purpose::test, 1), 0, z.size(), z.data());
  std::vector<float> xa(size_t(B) * kPixels), xb(xa.size()), pa(xa.size()), pb(xa.size());
  a.draw_images(z.data(), B, 5, 0, xa.data(), pa.data());
  b.draw_images(z.data(), B, 5, 0, xb.data(), pb.data());
  EXPECT_EQ(xa, xb);
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_NEAR(pa[i], pb[i], 1e-5) << i;
  double ones = 0;
  for (float v : xa) ones += v;
  EXPECT_GT(ones, 0.0);
  EXPECT_LT(ones, double(xa.size()));
}

}  // namespace
}  // namespace distvae
