// From a config and the data's image shape to a built VAE, and between a VAE (with its optimizer
// state) and a checkpoint.
#pragma once

#include <functional>
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

// A VAE rebuilt from a checkpoint: its stored config and image size, a backend, the networks
// with the checkpoint's parameters, for batches up to max_batch (0: the stored eval.iw_batch).
// adjust may change the spec first (e.g. the estimator).
struct LoadedVae {
  Config config;
  ImageGeom geom;
  std::unique_ptr<Backend<float>> backend;
  std::unique_ptr<Vae<float>> vae;
};
LoadedVae load_vae_checkpoint(const std::string& path, int max_batch,
                              const std::function<void(VaeSpec&)>& adjust = {});
// Throws "<data>: images are HxWxC but <checkpoint> was trained on ..." when they differ.
void require_same_images(const ImageGeom& data, const std::string& data_name,
                         const LoadedVae& model, const std::string& checkpoint);

}  // namespace distvae
