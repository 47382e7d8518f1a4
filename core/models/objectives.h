// The objective terms of the VAE families (docs/design.md section 3), in nats per image, each
// with its gradient, assembled from backend primitives. Vae (vae.cpp) adds them up into
//   loss = (1/B) sum_i -(1/S sum_s log p(x_i|z_is) - beta KL_i)   (+ the prior's cost)
// with the KL analytic (estimator B) or by Monte Carlo at the sampled z (estimator A).
#pragma once

#include "core/backend.h"

namespace distvae {

enum class Likelihood { bernoulli, gaussian };

struct LikelihoodSpec {
  Likelihood kind = Likelihood::bernoulli;
  bool learned_variance = false;  // gaussian: the decoder outputs [mean | logvar] (B, 2D)
  double fixed_logvar = 0.0, logvar_floor = -6.0;
};

// A learned-variance decoder's output halves and their gradients, (B, D) each, backend memory.
template <class T>
struct LikelihoodScratch {
  T *mean = nullptr, *logvar = nullptr, *dmean = nullptr, *dlogvar = nullptr;
};

// log p(x|z) per image into ll (B), from the decoder's output out and the data x (B, D):
//   bernoulli: sum_d x l - softplus(l), logits l = out
//   gaussian:  sum_d -(log 2pi + v + (x - m)^2 e^-v) / 2, m = out and v fixed, or [m | v] = out
//              with v floored (learned variance)
// With dout, dout = scale * d ll / d out: the decoder's output gradient.
template <class T>
void log_px_given_z(Backend<T>& be, const LikelihoodSpec& spec, const T* out, const T* x, T* ll,
                    T* dout, T scale, int B, int D, const LikelihoodScratch<T>& s);

// KL(N(mu, e^logvar) || N(0, I)) = sum_d (mu^2 + e^logvar - logvar - 1) / 2 per image into kl
// (B); kl_dim (L, may be null) gets each dimension's sum over the batch (free bits).
template <class T>
void kl_analytic(Backend<T>& be, const T* mu, const T* logvar, T* kl, T* kl_dim, int B, int L);

// dmu += scale w_d mu, dlogvar += scale w_d (e^logvar - 1) / 2 (weights w null: all ones).
template <class T>
void kl_analytic_backward(Backend<T>& be, const T* mu, const T* logvar, const T* weights, T scale,
                          T* dmu, T* dlogvar, int B, int L);

// Free bits: each latent dimension's KL averaged over the global batch, kl_dim_mean (L), is
// floored at lambda, so a dimension at or below it gets no KL gradient: weights[d] = 1 above
// lambda, else 0. Returns the smallest average.
template <class T>
double free_bits_weights(const double* kl_dim_mean, double lambda, int L, T* weights);

// Estimator A's KL at the sampled z: log q(z|x) into lq and log p(z) into lp (B each), whose
// difference is the Monte Carlo KL of each image.
template <class T>
void kl_monte_carlo(Backend<T>& be, const T* z, const T* mu, const T* logvar, T* lq, T* lp, int B,
                    int L);

// Its gradient with weight w at fixed eps (z = mu + sigma eps): -log p(z) adds w z to dz, and
// log q(z|x) = -sum_d (log 2pi + logvar + eps^2) / 2 adds -w / 2 to dlogvar (minus_half: (B, L)
// of -1/2; lp is scratch).
template <class T>
void kl_monte_carlo_backward(Backend<T>& be, const T* z, const T* minus_half, T w, T* lp, T* dz,
                             T* dlogvar, int B, int L);

// KL warm-up: beta_t = beta min(1, epochs_done / warmup_epochs), counted in (fractional) epochs
// so its meaning does not change with the world size; warmup_epochs <= 0: beta.
double kl_warmup_beta(double beta, double warmup_epochs, double epochs_done);

}  // namespace distvae
