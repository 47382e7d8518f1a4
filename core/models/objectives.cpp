#include "core/models/objectives.h"

#include <algorithm>

namespace distvae {

template <class T>
void log_px_given_z(Backend<T>& be, const LikelihoodSpec& spec, const T* out, const T* x, T* ll,
                    T* dout, T scale, int B, int D, const LikelihoodScratch<T>& s) {
  if (spec.kind == Likelihood::bernoulli) {
    be.bernoulli_log_lik(out, x, ll, dout, scale, B, D);
  } else if (!spec.learned_variance) {
    be.gaussian_log_lik(out, nullptr, T(spec.fixed_logvar), T(0), x, ll, dout, nullptr, scale, B,
                        D);
  } else {
    be.split_rows(out, s.mean, s.logvar, B, D, D);  // out: (B, 2D) = [mean | logvar]
    be.gaussian_log_lik(s.mean, s.logvar, T(0), T(spec.logvar_floor), x, ll,
                        dout ? s.dmean : nullptr, dout ? s.dlogvar : nullptr, scale, B, D);
    if (dout) be.join_rows(s.dmean, s.dlogvar, dout, B, D, D);
  }
}

template <class T>
void kl_analytic(Backend<T>& be, const T* mu, const T* logvar, T* kl, T* kl_dim, int B, int L) {
  be.kl_std_normal(mu, logvar, kl, kl_dim, B, L);
}

template <class T>
void kl_analytic_backward(Backend<T>& be, const T* mu, const T* logvar, const T* weights, T scale,
                          T* dmu, T* dlogvar, int B, int L) {
  be.kl_std_normal_backward(mu, logvar, weights, scale, dmu, dlogvar, B, L);
}

template <class T>
double free_bits_weights(const double* kl_dim_mean, double lambda, int L, T* weights) {
  double smallest = 1e300;
  for (int d = 0; d < L; ++d) {
    weights[d] = kl_dim_mean[d] > lambda ? T(1) : T(0);
    smallest = std::min(smallest, kl_dim_mean[d]);
  }
  return smallest;
}

template <class T>
void kl_monte_carlo(Backend<T>& be, const T* z, const T* mu, const T* logvar, T* lq, T* lp, int B,
                    int L) {
  be.normal_log_density(z, mu, logvar, lq, B, L);
  be.std_normal_log_density(z, lp, nullptr, T(0), B, L);
}

template <class T>
void kl_monte_carlo_backward(Backend<T>& be, const T* z, const T* minus_half, T w, T* lp, T* dz,
                             T* dlogvar, int B, int L) {
  be.std_normal_log_density(z, lp, dz, -w, B, L);  // the kernel adds scale * -z
  be.axpy(size_t(B) * L, w, minus_half, dlogvar);
}

double kl_warmup_beta(double beta, double warmup_epochs, double epochs_done) {
  return beta * (warmup_epochs > 0 ? std::min(1.0, epochs_done / warmup_epochs) : 1.0);
}

#define DISTVAE_OBJECTIVES(T)                                                                     \
  template void log_px_given_z(Backend<T>&, const LikelihoodSpec&, const T*, const T*, T*, T*, T, \
                               int, int, const LikelihoodScratch<T>&);                            \
  template void kl_analytic(Backend<T>&, const T*, const T*, T*, T*, int, int);                   \
  template void kl_analytic_backward(Backend<T>&, const T*, const T*, const T*, T, T*, T*, int,   \
                                     int);                                                        \
  template double free_bits_weights(const double*, double, int, T*);                              \
  template void kl_monte_carlo(Backend<T>&, const T*, const T*, const T*, T*, T*, int, int);      \
  template void kl_monte_carlo_backward(Backend<T>&, const T*, const T*, T, T*, T*, T*, int, int);
DISTVAE_OBJECTIVES(float)
DISTVAE_OBJECTIVES(double)
#undef DISTVAE_OBJECTIVES

}  // namespace distvae
