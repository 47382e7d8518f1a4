// distvae eval / sample: a checkpoint's test ELBO, importance-weighted log-likelihood, active
// units, the implicit prior's normalizer, sample-quality figures, and sample grids.
#pragma once

#include <cstdint>
#include <string>

#include "core/models/ais.h"
#include "core/models/vae.h"
#include "dist/communicator.h"
#include "launch/eval/marginal_likelihood.h"

namespace distvae {

struct ImageSet;
struct Config;

// A VAE's figures on an image set: means over images of the ELBO and its terms, of the
// importance-weighted bound with K samples, and the active units and per-dimension KL range.
struct LikelihoodFigures {
  int64_t images = 0;
  double elbo = 0, log_px_given_z = 0, kl = 0, iw = 0;
  int active = 0;
  double kl_dim_min = 0, kl_dim_max = 0;
};

// Images are binarized once (eval.binarize_seed) when the config binarizes. Rank r evaluates
// batches r, r + W, ... of `batch` images; the sums are all-reduced. print: progress on rank 0.
LikelihoodFigures likelihood_figures(Vae<float>& vae, const ImageSet& set, const Config& c,
                                     int batch, int K, Communicator& comm, bool print);

struct EvalOptions {
  std::string checkpoint;
  std::string data;  // shards; empty: the config's data.<split>
  std::string split = "test";
  int iw_samples = -1;           // -1: the config's eval.iw_samples
  int64_t max_images = -1;       // -1: the config's eval.max_images
  std::string out_json;          // also write the figures here when given
  bool normalize_prior = false;  // implicit prior: log Z by AIS, and the normalized figures
  AisOptions ais;
  int ais_runs = 3;
  int quality_images = 0;  // > 0: MMD and class coverage of this many generated images
  int ratio_check = 0;     // > 0: T against the exact aggregated posterior at this many draws
  // --ais (chains > 0) and --bdmc (bdmc > 0); the leapfrog steps and step size come from ais.
  MarginalOptions marginal;
};

// Images and AIS chains are split over the communicator's ranks; rank 0 prints.
int evaluate(const EvalOptions& o, Communicator& comm);

struct SampleOptions {
  std::string checkpoint;
  int n = 64;
  std::string out_png;
  int64_t seed = 1;
  // standard: z ~ N(0, I); learned: the implicit prior (AIS states resampled by weight);
  // aggregate: z ~ q(z|x) of random training images.
  std::string prior = "standard";
  AisOptions ais;
};
int sample(const SampleOptions& o, Communicator& comm);

}  // namespace distvae
