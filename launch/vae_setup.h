// From a config and the data's image shape to a built VAE, and between a VAE (with its optimizer
// state) and a checkpoint.
#pragma once

#include <memory>
#include <string>

#include "core/models/vae.h"
#include "core/optim.h"
#include "io/checkpoint.h"
#include "launch/config.h"
#include "launch/image_batch.h"

namespace distvae {

VaeSpec vae_spec_from(const Config& c, const ImageGeom& g);

// Slice names and shapes, one per line: two stores are compatible iff their layouts are equal.
std::string param_layout(const ParamStore<float>& ps);

struct VaeOptimizers {
  std::unique_ptr<OptimizerStateOwner<float>> encoder, decoder;
};

void save_vae(Checkpoint& ck, Vae<float>& vae, const VaeOptimizers* opt);
// Restores parameters (and optimizer state when opt is given). Throws naming the checkpoint and
// the first difference when it was written by another architecture.
void load_vae(const Checkpoint& ck, const std::string& path, Vae<float>& vae, VaeOptimizers* opt);

}  // namespace distvae
