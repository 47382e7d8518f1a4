// VAE step and evaluation: encoder -> (mu, logvar) -> z = mu + sigma eps -> decoder -> log p(x|z),
// KL analytic (estimator B) or by Monte Carlo (A), and the backward pass through all of it.
#include "core/models/vae.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/rng.h"

namespace distvae {

namespace {

std::vector<LayerSpec> encoder_with_head(const VaeSpec& s) {
  std::vector<LayerSpec> l = s.encoder;
  LayerSpec head;
  head.type = "linear";
  head.out = 2 * int64_t(s.latent);  // (mu, logvar)
  l.push_back(head);
  return l;
}

Shape encoder_input(const VaeSpec& s) {
  // An MLP encoder sees the image flattened; a convolutional one sees (C, H, W).
  if (s.encoder.empty() || s.encoder[0].type == "linear") return Shape{s.image.numel()};
  return s.image;
}

}  // namespace

template <class T>
Vae<T>::Vae(Backend<T>& be, const VaeSpec& spec, int max_batch)
    : be_(be),
      spec_(spec),
      max_batch_(max_batch),
      encoder_(be, "encoder", encoder_input(spec), encoder_with_head(spec), max_batch),
      decoder_(be, "decoder", Shape{spec.latent}, spec.decoder, max_batch, spec.image),
      D_(int(spec.image.numel())) {
  const LikelihoodSpec& lik = spec.likelihood;
  if (decoder_.autoregressive() && lik.kind != Likelihood::bernoulli)
    throw NetworkSpecError(
        "decoder: an autoregressive decoder models binary pixels: it needs likelihood bernoulli");
  const int64_t want = int64_t(D_) * (lik.learned_variance ? 2 : 1);
  if (decoder_.output_shape().numel() != want)
    throw NetworkSpecError("decoder: its output " + decoder_.output_shape().str() + " has " +
                           std::to_string(decoder_.output_shape().numel()) +
                           " values per image, but the images " + spec.image.str() +
                           " with likelihood " +
                           (lik.kind == Likelihood::bernoulli ? "bernoulli" : "gaussian") +
                           (lik.learned_variance ? " (learned variance: 2 values per pixel)" : "") +
                           " need " + std::to_string(want));
  if (spec.samples < 1) throw std::invalid_argument("VAE: samples per image must be >= 1");
  const size_t BL = size_t(max_batch) * spec.latent, BD = size_t(max_batch) * D_;
  for (T** p : {&mu_, &logvar_, &eps_, &z_, &dmu_, &dlogvar_, &dz_, &const_half_})
    *p = be.alloc(BL);
  dh_ = be.alloc(2 * BL);
  dout_ = be.alloc(want * size_t(max_batch));
  for (T** p : {&mean_, &dec_logvar_, &dmean_, &ddec_logvar_, &xrep_}) *p = be.alloc(BD);
  for (T** p : {&ll_, &kl_, &lp_, &lq_}) *p = be.alloc(size_t(max_batch));
  dim_weight_ = be.alloc(size_t(spec.latent));
  kl_dim_ = be.alloc(size_t(spec.latent));
  be.fill(const_half_, BL, T(-0.5));
  host_eps_.resize(BL);
  for (auto* v : {&host_b_, &host_lp_, &host_lq_}) v->resize(size_t(max_batch));
  host_ll_.resize(size_t(max_batch));
  host_kl_.resize(size_t(max_batch));
  host_kl_dim_.resize(size_t(spec.latent));
  host_kl_sum_.resize(size_t(spec.latent));
  host_cost_.resize(size_t(max_batch));
  host_cost_sum_.resize(size_t(max_batch));
}

template <class T>
Vae<T>::~Vae() {
  for (T* p : {mu_,         logvar_, eps_,  z_,    dmu_,        dlogvar_,    dz_,
               const_half_, dh_,     dout_, mean_, dec_logvar_, dmean_,      ddec_logvar_,
               xrep_,       ll_,     kl_,   lp_,   lq_,         dim_weight_, kl_dim_})
    be_.release(p);
}

template <class T>
void Vae<T>::init(uint64_t seed) {
  encoder_.init(seed);
  decoder_.init(seed);
}

template <class T>
void Vae<T>::encode_to_buffers(const T* x, int B) {
  const T* h = encoder_.forward(x, B);  // h: (B, 2 * latent)
  be_.split_rows(h, mu_, logvar_, B, spec_.latent, spec_.latent);
}

template <class T>
void Vae<T>::set_prior(PriorKind kind, LatentCostFn<T> cost) {
  if ((kind == PriorKind::standard) != !cost)
    throw std::invalid_argument("VAE: a non-standard prior needs its cost function (and only it)");
  if (kind == PriorKind::adversarial && spec_.estimator != Estimator::B)
    throw std::invalid_argument("VAE: the adversarial prior term needs estimator B");
  prior_ = kind;
  prior_cost_ = std::move(cost);
}

template <class T>
void Vae<T>::draw_noise(int B, uint64_t seed, uint32_t purpose, const uint64_t* keys,
                        uint64_t counter) {
  const int L = spec_.latent;
  // Image by image over the compute threads (each image has its own stream): Box-Muller in
  // double is the costliest elementwise work of a small model's step.
#pragma omp parallel for if (B * L >= 2048)
  for (int i = 0; i < B; ++i)
    normal_fill(seed, stream_id(purpose, keys[i]), counter * L, size_t(L),
                host_eps_.data() + size_t(i) * L);
  be_.to_device(host_eps_.data(), eps_, size_t(B) * L);
}

template <class T>
void Vae<T>::likelihood(const T* x, int B, bool with_grad, T scale) {
  const T* out = decoder_.forward(z_, B, x);  // an autoregressive decoder reads x too
  log_px_given_z(be_, spec_.likelihood, out, x, ll_, with_grad ? dout_ : nullptr, scale, B, D_,
                 LikelihoodScratch<T>{mean_, dec_logvar_, dmean_, ddec_logvar_});
}

template <class T>
double Vae<T>::analytic_kl(int B, double beta, const VaeStepArgs* g) {
  const int Lat = spec_.latent;
  kl_analytic(be_, mu_, logvar_, kl_, kl_dim_, B, Lat);
  be_.to_host(kl_, host_b_.data(), size_t(B));
  for (int i = 0; i < B; ++i) host_kl_[size_t(i)] = double(host_b_[size_t(i)]);
  if (!g || prior_ == PriorKind::adversarial) return std::numeric_limits<double>::quiet_NaN();
  const T* weight = nullptr;
  double kl_dim_min = std::numeric_limits<double>::quiet_NaN();
  if (g->free_bits > 0) {
    // The per-dimension KL summed over the global batch: one all-reduce of a latent-sized vector.
    std::vector<T>& kd = host_kl_dim_;
    std::vector<double>& mean = host_kl_sum_;
    be_.to_host(kl_dim_, kd.data(), size_t(Lat));
    std::copy(kd.begin(), kd.end(), mean.begin());
    if (g->allreduce_sum) g->allreduce_sum(mean.data(), mean.size());
    const double n = double(g->global_batch > 0 ? g->global_batch : B);
    for (double& m : mean) m /= n;
    kl_dim_min = free_bits_weights(mean.data(), g->free_bits, Lat, kd.data());
    be_.to_device(kd.data(), dim_weight_, size_t(Lat));
    weight = dim_weight_;
  }
  kl_analytic_backward(be_, mu_, logvar_, weight, T(beta / B), dmu_, dlogvar_, B, Lat);
  return kl_dim_min;
}

template <class T>
VaeStats Vae<T>::run(const T* x, int B, uint64_t seed, const uint64_t* keys, double beta,
                     const VaeStepArgs* g, double* elbo_i, double* ll_i, double* kl_i) {
  if (B <= 0 || B > max_batch_)
    throw std::invalid_argument("VAE: batch " + std::to_string(B) + " outside [1, " +
                                std::to_string(max_batch_) + "]");
  const bool grad = g != nullptr;
  const int Lat = spec_.latent, S = spec_.samples;
  const size_t BL = size_t(B) * Lat;
  // loss = (1/B) sum_i -(1/S sum_s log p(x|z_is) - beta KL_i)
  const T scale = T(-1.0 / (double(B) * S));
  encode_to_buffers(x, B);
  if (grad) {
    be_.fill(dmu_, BL, T(0));
    be_.fill(dlogvar_, BL, T(0));
  }
  std::vector<double>& ll = host_ll_;
  std::vector<double>& kl = host_kl_;
  double kl_dim_min = std::numeric_limits<double>::quiet_NaN();
  std::vector<double>& cost = host_cost_sum_;
  std::fill(ll.begin(), ll.end(), 0.0);
  std::fill(kl.begin(), kl.end(), 0.0);
  std::fill(cost.begin(), cost.end(), 0.0);
  auto add_cost = [&] {
    for (int i = 0; i < B; ++i) cost[size_t(i)] += host_cost_[size_t(i)] / S;
  };
  for (int s = 0; s < S; ++s) {
    draw_noise(B, seed, rng_purpose::reparam_noise, keys, uint64_t(s));
    be_.reparameterize(mu_, logvar_, eps_, z_, BL);
    likelihood(x, B, grad, scale);
    be_.to_host(ll_, host_b_.data(), size_t(B));
    for (int i = 0; i < B; ++i) ll[size_t(i)] += double(host_b_[size_t(i)]) / S;
    if (spec_.estimator == Estimator::A) {
      kl_monte_carlo(be_, z_, mu_, logvar_, lq_, lp_, B, Lat);
      std::vector<T>&lq = host_lq_, &lp = host_lp_;
      be_.to_host(lq_, lq.data(), size_t(B));
      be_.to_host(lp_, lp.data(), size_t(B));
      for (int i = 0; i < B; ++i) kl[size_t(i)] += (double(lq[size_t(i)]) - lp[size_t(i)]) / S;
    }
    if (!grad) {
      if (prior_cost_) prior_cost_(z_, B, T(0), nullptr, host_cost_.data()), add_cost();
      continue;
    }
    const bool last = s == S - 1;
    const ParamGrads grads = s == 0 ? ParamGrads::overwrite : ParamGrads::accumulate;
    const T* dz = decoder_.backward(dout_, B, grads, true, last ? g->decoder_ready : nullptr);
    be_.copy(dz, dz_, BL);
    // The prior's cost enters the loss with the KL's weight: its z-gradient joins the decoder's.
    if (prior_cost_)
      prior_cost_(z_, B, T(beta / (double(B) * S)), dz_, host_cost_.data()), add_cost();
    if (spec_.estimator == Estimator::A)
      kl_monte_carlo_backward(be_, z_, const_half_, T(beta / (double(B) * S)), lp_, dz_, dlogvar_,
                              B, Lat);
    be_.reparameterize_backward(dz_, logvar_, eps_, dmu_, dlogvar_, BL);
  }
  if (spec_.estimator == Estimator::B) kl_dim_min = analytic_kl(B, beta, g);
  if (grad) {
    be_.join_rows(dmu_, dlogvar_, dh_, B, Lat, Lat);
    encoder_.backward(dh_, B, ParamGrads::overwrite, false, g->encoder_ready);
  }
  VaeStats st;
  st.images = B;
  st.kl_dim_min = kl_dim_min;
  for (int i = 0; i < B; ++i) {
    const double c = prior_ == PriorKind::implicit ? cost[size_t(i)] : 0.0;
    const double e = ll[size_t(i)] - kl[size_t(i)] - c;
    st.elbo += e, st.log_px_given_z += ll[size_t(i)], st.kl += kl[size_t(i)];
    st.prior_cost += cost[size_t(i)];
    if (elbo_i) elbo_i[i] = e;
    if (ll_i) ll_i[i] = ll[size_t(i)];
    if (kl_i) kl_i[i] = kl[size_t(i)];
  }
  return st;
}

template <class T>
VaeStats Vae<T>::train_step(const T* x, int B, const VaeStepArgs& a) {
  return run(x, B, a.seed, a.noise_keys, a.beta, &a, nullptr, nullptr, nullptr);
}

template <class T>
VaeStats Vae<T>::evaluate_elbo(const T* x, int B, uint64_t seed, const uint64_t* keys, double* elbo,
                               double* ll, double* kl) {
  return run(x, B, seed, keys, 1.0, nullptr, elbo, ll, kl);
}

template <class T>
double Vae<T>::iw_log_likelihood(const T* x, int K, uint64_t seed, uint64_t key) {
  const int Lat = spec_.latent;
  encode_to_buffers(x, 1);
  std::vector<T> mu(static_cast<size_t>(Lat)), lv(static_cast<size_t>(Lat));
  be_.to_host(mu_, mu.data(), size_t(Lat));
  be_.to_host(logvar_, lv.data(), size_t(Lat));
  // Replicate mu, logvar and x over the rows of a chunk once; only the noise changes.
  const int C = std::min(K, max_batch_);
  std::vector<T> rows(size_t(C) * Lat);
  for (int r = 0; r < C; ++r) std::copy(mu.begin(), mu.end(), rows.begin() + size_t(r) * Lat);
  be_.to_device(rows.data(), mu_, rows.size());
  for (int r = 0; r < C; ++r) std::copy(lv.begin(), lv.end(), rows.begin() + size_t(r) * Lat);
  be_.to_device(rows.data(), logvar_, rows.size());
  for (int r = 0; r < C; ++r) be_.copy(x, xrep_ + size_t(r) * D_, size_t(D_));  // (C, D)
  std::vector<double> logw;
  logw.reserve(size_t(K));
  std::vector<T> ll(static_cast<size_t>(C)), lp(ll), lq(ll);
  std::vector<double> log_t(static_cast<size_t>(C), 0.0);  // the implicit prior's T(z)
  for (int k0 = 0; k0 < K; k0 += C) {
    const int c = std::min(C, K - k0);
    // Sample by sample over the compute threads: element i of the stream depends on i alone, so
    // any split gives the same numbers.
#pragma omp parallel for if (c * Lat >= 2048)
    for (int r = 0; r < c; ++r)
      normal_fill(seed, stream_id(rng_purpose::evaluation, key), uint64_t(k0 + r) * Lat,
                  size_t(Lat), host_eps_.data() + size_t(r) * Lat);
    be_.to_device(host_eps_.data(), eps_, size_t(c) * Lat);
    be_.reparameterize(mu_, logvar_, eps_, z_, size_t(c) * Lat);
    likelihood(xrep_, c, false, T(0));
    be_.std_normal_log_density(z_, lp_, nullptr, T(0), c, Lat);
    be_.normal_log_density(z_, mu_, logvar_, lq_, c, Lat);
    be_.to_host(ll_, ll.data(), size_t(c));
    be_.to_host(lp_, lp.data(), size_t(c));
    be_.to_host(lq_, lq.data(), size_t(c));
    if (prior_ == PriorKind::implicit) {
      prior_cost_(z_, c, T(0), nullptr, log_t.data());  // cost = -T(z)
      for (int i = 0; i < c; ++i) log_t[size_t(i)] = -log_t[size_t(i)];
    }
    for (int i = 0; i < c; ++i)  // log w = log p(x|z) + log p(z) [+ T(z)] - log q(z|x)
      logw.push_back(double(ll[size_t(i)]) + double(lp[size_t(i)]) + log_t[size_t(i)] -
                     double(lq[size_t(i)]));
  }
  const double m = *std::max_element(logw.begin(), logw.end());
  double s = 0;
  for (double w : logw) s += std::exp(w - m);
  return m + std::log(s / double(K));
}

template <class T>
void Vae<T>::score_function_encoder_grad(const T* x, int B, uint64_t seed, const uint64_t* keys) {
  if (spec_.estimator != Estimator::A || spec_.samples != 1)
    throw std::invalid_argument("score-function gradient needs estimator A and one sample");
  std::vector<double>& f = host_ll_;  // f_i = log p(x_i, z_i) - log q(z_i|x_i)
  run(x, B, seed, keys, 1.0, nullptr, f.data(), nullptr, nullptr);
  encode_to_buffers(x, B);  // encoder activations for backward, eps_ as run drew them
  draw_noise(B, seed, rng_purpose::reparam_noise, keys, 0);
  const int Lat = spec_.latent;
  const size_t BL = size_t(B) * Lat;
  std::vector<T> lv(BL), dmu(BL), dlv(BL);
  be_.to_host(logvar_, lv.data(), BL);
  for (int i = 0; i < B; ++i)
    for (int d = 0; d < Lat; ++d) {
      const size_t k = size_t(i) * Lat + d;
      const double e = double(host_eps_[k]), c = -f[size_t(i)] / B;  // loss = -(1/B) sum f
      dmu[k] = T(c * e * std::exp(-0.5 * double(lv[k])));
      dlv[k] = T(c * 0.5 * (e * e - 1.0));
    }
  be_.to_device(dmu.data(), dmu_, BL);
  be_.to_device(dlv.data(), dlogvar_, BL);
  be_.join_rows(dmu_, dlogvar_, dh_, B, Lat, Lat);
  encoder_.backward(dh_, B, ParamGrads::overwrite, false);
}

template <class T>
void Vae<T>::encode_posterior(const T* x, int B) {
  encode_to_buffers(x, B);
}

template <class T>
void Vae<T>::draw_posterior(int B, uint64_t seed, uint32_t purpose, const uint64_t* keys,
                            uint64_t counter, T* z_out) {
  draw_noise(B, seed, purpose, keys, counter);
  be_.reparameterize(mu_, logvar_, eps_, z_out, size_t(B) * spec_.latent);
}

template <class T>
void Vae<T>::encode(const T* x, int B, T* mu_host, T* logvar_host) {
  encode_to_buffers(x, B);
  be_.to_host(mu_, mu_host, size_t(B) * spec_.latent);
  if (logvar_host) be_.to_host(logvar_, logvar_host, size_t(B) * spec_.latent);
}

template <class T>
void Vae<T>::draw_images(const T* z_host, int B, uint64_t seed, uint64_t first_key, float* x_host,
                         float* prob_host) {
  if (!decoder_.autoregressive())
    throw std::invalid_argument("decoder: draw_images needs an autoregressive decoder");
  if (B <= 0 || B > max_batch_)
    throw std::invalid_argument("VAE: batch " + std::to_string(B) + " outside [1, " +
                                std::to_string(max_batch_) + "]");
  // x starts all zeros; the masks make the logits at p independent of x at p and after, so pass
  // p sees exactly the pixels drawn before it, and the last pass leaves x ~ p(x|z).
  const int HW = int(spec_.image[1] * spec_.image[2]), C = int(spec_.image[0]);
  const size_t n = size_t(B) * D_;
  std::vector<T> x(n, T(0)), logits(n);
  std::vector<float> u(n);  // every draw at once: (b, c * HW + p)
  for (int b = 0; b < B; ++b)
    uniform_fill(seed, stream_id(rng_purpose::pixel_sample, first_key + uint64_t(b)), 0, size_t(D_),
                 u.data() + size_t(b) * D_);
  be_.to_device(z_host, z_, size_t(B) * spec_.latent);
  be_.fill(xrep_, n, T(0));
  const T* out = decoder_.forward(z_, B, xrep_);
  for (int p = 0; p < HW; ++p) {
    if (p > 0) out = decoder_.rerun_with_image(xrep_, B);
    be_.to_host(out, logits.data(), n);
    for (int b = 0; b < B; ++b)
      for (int c = 0; c < C; ++c) {
        const size_t k = size_t(b) * D_ + size_t(c) * HW + size_t(p);
        const double prob = 1.0 / (1.0 + std::exp(-double(logits[k])));
        x[k] = T(u[k] < prob ? 1 : 0);
        x_host[k] = float(x[k]);
        if (prob_host) prob_host[k] = float(prob);
      }
    be_.to_device(x.data(), xrep_, n);
  }
}

template <class T>
void Vae<T>::decode_mean(const T* z_host, int B, float* out_host, uint64_t seed,
                         uint64_t first_key) {
  if (decoder_.autoregressive()) {
    std::vector<float> x(size_t(B) * D_);
    return draw_images(z_host, B, seed, first_key, x.data(), out_host);
  }
  be_.to_device(z_host, z_, size_t(B) * spec_.latent);
  const T* out = decoder_.forward(z_, B);
  const size_t n = size_t(B) * D_;
  if (spec_.likelihood.kind == Likelihood::bernoulli) {
    be_.act_forward(out, mean_, n, ActSpec{Act::sigmoid, 0});
  } else if (spec_.likelihood.learned_variance) {
    be_.split_rows(out, mean_, dec_logvar_, B, D_, D_);
  } else {
    be_.copy(out, mean_, n);
  }
  std::vector<T> h(n);
  be_.to_host(mean_, h.data(), n);
  for (size_t i = 0; i < n; ++i) out_host[i] = float(std::clamp(double(h[i]), 0.0, 1.0));
}

template <class T>
void Vae<T>::decode_output(const T* z_host, int B, T* out_host) {
  if (decoder_.autoregressive())
    throw std::invalid_argument(
        "decoder: an autoregressive decoder's output depends on the image; it has no output for "
        "z alone");
  be_.to_device(z_host, z_, size_t(B) * spec_.latent);
  be_.to_host(decoder_.forward(z_, B), out_host, size_t(B) * decoder_.output_shape().numel());
}

template <class T>
void Vae<T>::marginal_log_factor(const T* z_host, const T* x, int B, double* f, T* df_host) {
  const size_t BL = size_t(B) * spec_.latent;
  be_.to_device(z_host, z_, BL);
  likelihood(x, B, true, T(1));  // dout_ = d log p(x|z) / d out
  be_.copy(decoder_.backward(dout_, B, ParamGrads::none, true), dz_, BL);
  be_.to_host(ll_, host_b_.data(), size_t(B));
  for (int i = 0; i < B; ++i) f[i] = double(host_b_[size_t(i)]);
  if (prior_ == PriorKind::implicit) {  // cost = -T(z): dz += -1 * d cost / dz = dT/dz
    prior_cost_(z_, B, T(-1), dz_, host_cost_.data());
    for (int i = 0; i < B; ++i) f[i] -= host_cost_[size_t(i)];
  }
  be_.to_host(dz_, df_host, BL);
}

template class Vae<float>;
template class Vae<double>;

}  // namespace distvae
