// The implicit prior's normalizer Z = E_N(0,I)[exp T(z)] by annealed importance sampling, its
// chains split over the ranks, repeated over independent runs to show the estimate's spread; and
// samples of the learned prior p(z) exp(T(z)) / Z (the chains' final states resampled by weight).
#pragma once

#include <vector>

#include "core/models/ais.h"
#include "dist/communicator.h"

namespace distvae {

struct PriorNormalizer {
  std::vector<LogNormalizer> runs;  // one per independent run
  double log_z = 0;                 // mean over runs
  double spread = 0;                // max - min over runs
  double acceptance = 0;            // mean HMC acceptance of the first run
  std::vector<float> z;             // the first run's final states (chains, latent)
  std::vector<double> log_w;        // and their log weights
};

// Every rank runs its share of the chains of each run; every rank returns the whole result.
PriorNormalizer normalize_prior(Discriminator<float>& t, int latent, const AisOptions& base,
                                int runs, Communicator& comm, bool print);

// n draws of the learned prior: the states resampled with probability proportional to exp(log w).
std::vector<float> resample_states(const PriorNormalizer& p, int latent, int n, uint64_t seed);

}  // namespace distvae
