// Annealed importance sampling for the normalizer of the implicit prior p(z) exp(T(z)) with
// p = N(0, I): Z = E_p[exp T(z)] (docs/design.md section 3). exp T is heavy-tailed, so plain Monte
// Carlo from p fails; AIS anneals from p to p exp(T) through p exp(beta_k T), 0 = beta_0 < ... <
// beta_K = 1, with Hamiltonian Monte Carlo transitions driven by T's input gradient, and weights
// log w = sum_k (beta_k - beta_{k-1}) T(z_{k-1}). E[w] = Z exactly, for any schedule.
#pragma once

#include <cstdint>
#include <vector>

#include "core/models/discriminator.h"

namespace distvae {

struct AisOptions {
  int chains = 512;
  int temperatures = 3000;  // K
  int leapfrog = 5;         // leapfrog steps per HMC transition
  double step_size = 0.1;   // initial; adapted toward 65% acceptance as the chains anneal
  uint64_t seed = 1;
  uint64_t first_chain = 0;  // chain c draws from stream (ais, first_chain + c): split over ranks
};

struct AisChains {
  std::vector<double> log_w;  // per chain
  std::vector<float> z;       // (chains, latent): final states, approximately p exp(T) / Z
  double acceptance = 0;      // mean HMC acceptance over chains and temperatures
};

// beta_k of a sigmoid schedule (dense near both ends, where the distributions change fastest).
double ais_beta(int k, int K);

template <class T>
AisChains ais_chains(Discriminator<T>& t, int latent, const AisOptions& o);

// log Z = logsumexp(log w) - log n, its standard error by the delta method
// (std(w) / (mean(w) sqrt(n))) and the effective sample size (sum w)^2 / sum w^2.
struct LogNormalizer {
  double log_z = 0, std_error = 0, ess = 0;
  int64_t n = 0;
};
LogNormalizer log_normalizer(const std::vector<double>& log_w);

}  // namespace distvae
