// distvae eval --ais and --bdmc: log p(x) per image by annealed importance sampling from the prior
// (core/models/ais.h), and bidirectional Monte Carlo on images simulated from the model, where the
// z that made each image is an exact posterior sample and reverse AIS gives an upper bound.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dist/communicator.h"

namespace distvae {

struct ImageSet;

struct MarginalOptions {
  int chains = 0;            // chains per image; 0: no AIS
  int temperatures = 1000;   // schedule length K
  int leapfrog = 5;          // leapfrog steps per HMC transition
  double step_size = 0.05;   // the pilots' initial step size
  int rows = 1024;           // chains evaluated together (the decoder's batch)
  int bdmc = 0;              // simulated images for BDMC; 0: none
  double bdmc_target = 1.0;  // the gap (nats) a schedule should close
  // > 0: p(x|z) = N(x; mean(z), sigma^2 I) on the intensities (not binarized), mean(z) the
  // decoder's mean or the generator's output, so that a GAN and a VAE are on one scale (Wu et al.
  // 2017); 0: the model's own likelihood.
  double gaussian_sigma = 0;
  uint64_t seed = 1;
};

// Means over the images: log p(x) (each image's log mean exp of its chains' weights), its
// standard error (the AIS noise: the images' delta-method errors combined), the chains'
// effective sample size per image and HMC acceptance; and the time per image on this run.
struct AisFigures {
  int64_t images = 0;
  int chains = 0, temperatures = 0;
  double log_px = 0, std_error = 0, ess = 0, acceptance = 0, seconds_per_image = 0;
};

// The images as distvae eval sees them (binarized with eval.binarize_seed when the config
// binarizes and no gaussian_sigma is given), split into contiguous blocks over the ranks; rank 0
// prints progress and an ETA. The model is loaded from the checkpoint with batches of o.rows
// chains. A gan needs gaussian_sigma.
AisFigures ais_log_likelihood(const std::string& checkpoint, const ImageSet& set,
                              const MarginalOptions& o, Communicator& comm, bool print);

// One schedule length's BDMC bounds on the mean log p(x) of the simulated images.
struct BdmcRow {
  int temperatures = 0;
  double lower = 0, upper = 0, lower_se = 0, upper_se = 0, seconds = 0;
};

// o.bdmc images simulated from the model (z ~ N(0, I), x ~ p(x|z)); forward and reverse AIS at
// K/8, K/4, K/2 and K temperatures (at least 8), until the gap is below o.bdmc_target.
std::vector<BdmcRow> bdmc_bounds(const std::string& checkpoint, const MarginalOptions& o,
                                 Communicator& comm, bool print);

}  // namespace distvae
