// The variational autoencoder: encoder q(z|x) = N(mu, diag e^logvar), decoder p(x|z), prior
// N(0, I). One training step computes the minibatch loss -(E[log p(x|z)] - beta KL) with SGVB
// estimator A or B and backpropagates it; evaluation gives the ELBO and the importance-weighted
// bound. Knows nothing of MPI: reductions and "gradients ready" go through callbacks.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/models/objectives.h"
#include "core/network.h"

namespace distvae {

enum class Estimator { A, B };

struct VaeSpec {
  Shape image;  // (C, H, W)
  int latent = 32;
  std::vector<LayerSpec> encoder, decoder;
  LikelihoodSpec likelihood;
  Estimator estimator = Estimator::B;
  int samples = 1;  // L
};

// What the prior adds to, or puts in place of, the analytic KL to N(0, I) (docs/design.md section
// 3), as a per-image cost at the sampled z:
//   standard:    none.
//   implicit:    cost = -T(z), since KL(q(z|x)||q(z)) = KL(q(z|x)||p(z)) - E_q T(z); the learned
//                prior log p(z) + T(z) also enters the importance-weighted bound.
//   adversarial: cost = softplus(T(z)) replaces the KL in the loss (the reported ELBO keeps the KL
//                to N(0, I), a valid bound for the standard prior the codes are pushed toward).
enum class PriorKind { standard, implicit, adversarial };

// cost[b] for each of the B rows of z (B, latent); with dz, dz += scale * d cost / dz, leaving
// the cost's own parameters untouched.
template <class T>
using LatentCostFn = std::function<void(const T* z, int B, T scale, T* dz, double* cost)>;

struct VaeStepArgs {
  uint64_t seed = 0;
  const uint64_t* noise_keys = nullptr;  // per image: keys its reparameterization noise stream
  double beta = 1.0;
  double free_bits = 0.0;    // lambda, estimator B
  int64_t global_batch = 0;  // images in the step over all ranks (free-bit averages)
  // Sums a host vector over all ranks in place (free bits); identity on one rank.
  std::function<void(double*, size_t)> allreduce_sum;
  GradReadyFn encoder_ready, decoder_ready;
};

// Sums over the images of a batch (divide by the count for means), in nats.
struct VaeStats {
  double elbo = 0, log_px_given_z = 0, kl = 0;
  double prior_cost = 0;  // the PriorKind's cost (implicit: -T(z); adversarial: softplus(T(z)))
  int64_t images = 0;
  // With free bits: the smallest over dimensions of the global-batch-averaged KL (else NaN).
  double kl_dim_min = std::numeric_limits<double>::quiet_NaN();
};

template <class T>
class Vae {
 public:
  Vae(Backend<T>& be, const VaeSpec& spec, int max_batch);
  Vae(const Vae&) = delete;
  Vae& operator=(const Vae&) = delete;
  ~Vae();

  Backend<T>& backend() { return be_; }
  Network<T>& encoder() { return encoder_; }
  Network<T>& decoder() { return decoder_; }
  const VaeSpec& spec() const { return spec_; }
  int image_size() const { return int(spec_.image.numel()); }
  void init(uint64_t seed);
  // Installs the prior's extra cost (standard: none). The function must outlive the VAE's use.
  void set_prior(PriorKind kind, LatentCostFn<T> cost);
  PriorKind prior_kind() const { return prior_; }

  // x: (B, C*H*W) in the backend's memory. Zeroes and fills both networks' gradients with
  // d loss / d params for loss = (1/B) sum_i -(mean_l log p(x_i|z_il) - beta KL_i).
  VaeStats train_step(const T* x, int B, const VaeStepArgs& a);
  // Forward only: per-image ELBO, log p(x|z), KL (estimator as configured) into host arrays.
  VaeStats evaluate_elbo(const T* x, int B, uint64_t seed, const uint64_t* noise_keys, double* elbo,
                         double* log_px_given_z, double* kl);
  // log (1/K) sum_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x), for one image x (C*H*W); the samples
  // are processed max_batch at a time.
  double iw_log_likelihood(const T* x, int K, uint64_t seed, uint64_t noise_key);
  // The score-function (REINFORCE) estimate of the encoder's loss gradient, into the encoder's
  // gradient buffer: d/dphi of -(1/B) sum_i f(z_i) with f = log p(x, z) - log q(z|x) held fixed
  // and d log q(z|x)/dmu = eps / sigma, d log q/dlogvar = (eps^2 - 1) / 2 at z = mu + sigma eps.
  // Needs estimator A and one sample (the same noise as train_step for the same keys).
  void score_function_encoder_grad(const T* x, int B, uint64_t seed, const uint64_t* keys);
  // The discriminator's q samples: encode_posterior runs the encoder on x once; each
  // draw_posterior then writes z = mu + sigma eps into z_out (B, latent; backend memory), eps from
  // the streams (purpose, keys[b]) at element offset counter * latent. Any other call in between
  // may overwrite the encoded (mu, sigma).
  void encode_posterior(const T* x, int B);
  void draw_posterior(int B, uint64_t seed, uint32_t purpose, const uint64_t* keys,
                      uint64_t counter, T* z_out);
  // Posterior means mu (B, latent) to host.
  void encode(const T* x, int B, T* mu_host, T* logvar_host);
  // Decoder means (B, C*H*W) in [0, 1] to host, for z (B, latent) given on the host. An
  // autoregressive decoder has no mean in closed form: it draws x ~ p(x|z) pixel by pixel in
  // raster order (H*W passes of its masked layers), from the streams (pixel_sample, first_key +
  // b) of seed, and gives each pixel's probability of 1 given the pixels drawn before it.
  void decode_mean(const T* z_host, int B, float* out_host, uint64_t seed = 0,
                   uint64_t first_key = 0);
  // x ~ p(x|z) of an autoregressive decoder (B, C*H*W of 0 or 1) to host, and each pixel's
  // probability of 1 given the pixels before it (prob_host; may be null): H*W passes of the
  // layers from its autoregressive one on, pass p drawing pixel p of every channel. Draw (b, c, p)
  // is element c*H*W + p of stream (pixel_sample, first_key + b) of seed.
  void draw_images(const T* z_host, int B, uint64_t seed, uint64_t first_key, float* x_host,
                   float* prob_host);
  // The decoder's output itself (B, C*H*W, or 2 C*H*W with a learned variance) to host. Not for
  // an autoregressive decoder, whose output needs the image.
  void decode_output(const T* z_host, int B, T* out_host);
  // AIS's annealed factor for log p(x) (core/models/ais.h): f(z) = log p(x|z), plus T(z) for the
  // implicit prior (its unnormalized density is N(0, I) e^T), per row into f (host) and df/dz into
  // df (B, latent; host), for z (B, latent; host) and the rows' images x (B, C*H*W; backend).
  void marginal_log_factor(const T* z_host, const T* x, int B, double* f, T* df_host);

 private:
  // The whole forward pass (and, with g, the backward pass); per-image figures when asked.
  VaeStats run(const T* x, int B, uint64_t seed, const uint64_t* keys, double beta,
               const VaeStepArgs* g, double* elbo_i, double* ll_i, double* kl_i);
  void encode_to_buffers(const T* x, int B);
  void draw_noise(int B, uint64_t seed, uint32_t purpose, const uint64_t* keys, uint64_t counter);
  // Decoder forward on z_; log p(x|z) per image into ll_; with_grad: d(scale * ll)/d output.
  void likelihood(const T* x, int B, bool with_grad, T scale);
  // Estimator B's KL into host_kl_; with g, its gradient (free bits from g) into dmu_, dlogvar_.
  // Returns the smallest global-batch-averaged dimension KL under free bits, else NaN.
  double analytic_kl(int B, double beta, const VaeStepArgs* g);

  Backend<T>& be_;
  VaeSpec spec_;
  int max_batch_;
  Network<T> encoder_, decoder_;
  int D_;  // values per image
  // device buffers, sized for max_batch
  T *mu_, *logvar_, *eps_, *z_, *dmu_, *dlogvar_, *dz_, *dh_, *dout_, *mean_, *dec_logvar_, *dmean_,
      *ddec_logvar_, *xrep_, *const_half_, *dim_weight_, *kl_dim_;
  T *ll_, *kl_, *lp_, *lq_;  // (B)
  // host staging, sized once so a step allocates nothing
  std::vector<T> host_eps_, host_b_, host_lp_, host_lq_, host_kl_dim_;
  std::vector<double> host_ll_, host_kl_, host_kl_sum_, host_cost_, host_cost_sum_;
  PriorKind prior_ = PriorKind::standard;
  LatentCostFn<T> prior_cost_;
};

extern template class Vae<float>;
extern template class Vae<double>;

}  // namespace distvae
