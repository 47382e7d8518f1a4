// Annealed importance sampling from p = N(0, I) to p(z) exp(f(z)) / Z through p exp(beta_k f),
// 0 = beta_0 < ... < beta_K = 1, with Hamiltonian Monte Carlo transitions driven by f's gradient,
// and weights log w = sum_k (beta_k - beta_{k-1}) f(z_{k-1}): E[w] = Z = E_p[exp f] exactly, for
// any schedule (docs/design.md section 3). Two uses:
//   f = T(z), the implicit prior's log-ratio: Z normalizes p(z) exp(T(z)) (exp T is heavy-tailed,
//       so plain Monte Carlo from p fails);
//   f = log p(x|z) for one image x: Z = p(x), the marginal likelihood (Wu et al., ICLR 2017).
// Run in reverse from an exact sample of p exp(f) / Z (bidirectional Monte Carlo: simulated data,
// whose z is known), the weights log w = sum_k (beta_{k-1} - beta_k) f(z_k) have E[w] = 1 / Z, so
// -log w is a stochastic upper bound on log Z where the forward run gives a lower one.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/models/discriminator.h"
#include "core/models/vae.h"
#include "core/rng.h"

namespace distvae {

// The annealed factor f for n chains' states z (n, latent; host): f(z_i) into value[i] and its
// gradient into grad (n, latent; host). chain0: the index (in the run) of row 0's chain, so that a
// factor with one term per image knows which image each row belongs to.
template <class T>
using AisLogFactor = std::function<void(const T* z, int n, int64_t chain0, double* value, T* grad)>;

struct AisOptions {
  int chains = 512;
  int temperatures = 3000;  // K
  int leapfrog = 5;         // leapfrog steps per HMC transition
  double step_size = 0.1;   // initial; adapted toward 65% acceptance as the chains anneal
  uint64_t seed = 1;
  uint64_t first_chain =
      0;  // chain c draws from stream (purpose, first_chain + c): split over ranks
  uint32_t purpose = rng_purpose::ais;
  // ais_run: empty, each chain adapts its own step size toward 65% acceptance and the run records
  // the step sizes it used (AisChains::step_sizes); given, chain c's step size at step s (1..K),
  // fixed in advance. A chain adapting on its own acceptances has kernels that depend on its own
  // past, which biases its weight; ais_chains and ais_marginal therefore first run `pilot`
  // adapting chains (per image for ais_marginal; weights discarded) and give the others the
  // geometric mean of the pilots' step sizes at each step, which keeps E[w] = Z exact.
  std::function<double(int64_t chain, int step)> step_of;
  int pilot = 4;
};

struct AisChains {
  std::vector<double> log_w;      // per chain
  std::vector<float> z;           // (chains, latent): final states, approximately p exp(T) / Z
  double acceptance = 0;          // mean HMC acceptance over chains and temperatures
  std::vector<float> step_sizes;  // adapting runs: (chains, K), chain c's step size at step s
};

// beta_k of a sigmoid schedule (dense near both ends, where the distributions change fastest).
double ais_beta(int k, int K);

// The chains of f, max_rows at a time. With start (chains, latent; host), the run is reversed:
// each chain starts there (an exact sample of p exp(f) / Z) and anneals from beta = 1 to 0.
template <class T>
AisChains ais_run(const AisLogFactor<T>& f, int latent, int max_rows, const AisOptions& o,
                  const T* start = nullptr);

// The implicit prior's normalizer: f = T(z), the discriminator's logit.
template <class T>
AisChains ais_chains(Discriminator<T>& t, int latent, const AisOptions& o);

// log p(x) of n images (host, (n, C*H*W)) by AIS from the prior: o.chains chains per image, chain j
// of image i is chain i * o.chains + j of the run (stream (o.purpose, o.first_chain + that)), so an
// image's chains are the same whichever rank or chunk runs them. With start (n * o.chains, latent),
// reversed from there (BDMC). Returns every chain: log_w of image i at [i o.chains, (i+1)
// o.chains).
template <class T>
AisChains ais_marginal(Vae<T>& vae, const T* images, int n, const AisOptions& o,
                       const T* start = nullptr);

// log Z = logsumexp(log w) - log n, its standard error by the delta method
// (std(w) / (mean(w) sqrt(n))) and the effective sample size (sum w)^2 / sum w^2.
struct LogNormalizer {
  double log_z = 0, std_error = 0, ess = 0;
  int64_t n = 0;
};
LogNormalizer log_normalizer(const std::vector<double>& log_w);

}  // namespace distvae
