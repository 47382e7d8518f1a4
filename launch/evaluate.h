// distvae eval / sample: a checkpoint's test ELBO, importance-weighted log-likelihood, active
// units, and sample grids.
#pragma once

#include <string>

namespace distvae {

struct EvalOptions {
  std::string checkpoint;
  std::string data;  // shards; empty: the config's data.<split>
  std::string split = "test";
  int iw_samples = -1;      // -1: the config's eval.iw_samples
  int64_t max_images = -1;  // -1: the config's eval.max_images
  std::string out_json;     // also write the figures here when given
};

int evaluate(const EvalOptions& o);

int sample(const std::string& checkpoint, int n, const std::string& out_png, int64_t seed);

}  // namespace distvae
