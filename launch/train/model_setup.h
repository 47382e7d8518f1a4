// From a config and the data's image shape to a model family's networks (docs/design.md section 3),
// and between those networks (with their optimizer state) and a checkpoint.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/models/discriminator.h"
#include "core/models/gan.h"
#include "core/models/vae.h"
#include "core/optim.h"
#include "io/data/image_batch.h"
#include "io/hdf5/checkpoint.h"
#include "launch/config/config.h"

namespace distvae {

VaeSpec vae_spec_from(const Config& c, const ImageGeom& g);
GanSpec gan_spec_from(const Config& c, const ImageGeom& g);

// Slice names and shapes, one per line: two stores are compatible iff their layouts are equal.
std::string param_layout(const ParamStore<float>& ps);

// One config's networks. The VAE families have vae (and, with a discriminator, latent_disc: T(z),
// already installed as the VAE's prior cost); gan has gan.
struct Model {
  std::unique_ptr<Vae<float>> vae;
  std::unique_ptr<Discriminator<float>> latent_disc;
  std::unique_ptr<Gan<float>> gan;

  // The trained networks: the model's first (encoder and decoder, or the generator), then the
  // discriminator.
  std::vector<Network<float>*> trained();
  Discriminator<float>* discriminator();  // null for vae
  void init(uint64_t seed);
  // Training mode (batch norm by the batch) or evaluation mode, the default, for every network.
  void set_training(bool on);
};
Model build_model(const Config& c, const ImageGeom& g, Backend<float>& be, int max_batch);

// config check's data check: when data.train's files exist, the networks are built for their
// image size (throwing as train would on a shape that cannot fit) and the answer says so;
// otherwise it says the shapes were not checked against the data.
std::string check_model_against_data(const Config& c);

// A network in a checkpoint: its values and layout, and the optimizer state when opt is given.
struct NetState {
  Network<float>* net;
  OptimizerStateOwner<float>* opt = nullptr;
};
// The model's networks in checkpoint order (the GAN's snapshot G' has no optimizer).
std::vector<Network<float>*> checkpointed(Model& m);
void save_networks(Checkpoint& ck, Backend<float>& be, const std::vector<NetState>& nets);
// Restores values (and optimizer state). Throws naming the checkpoint and the first difference
// when it was written by another architecture or model family.
void load_networks(const Checkpoint& ck, const std::string& path, Backend<float>& be,
                   const std::vector<NetState>& nets);

// A model rebuilt from a checkpoint: its stored config and image size, a backend, the networks
// with the checkpoint's parameters, for batches up to max_batch (0: the stored eval.iw_batch).
// adjust may change a VAE's spec first (e.g. the estimator).
struct LoadedModel {
  Config config;
  ImageGeom geom;
  std::unique_ptr<Backend<float>> backend;
  Model model;
};
LoadedModel load_model_checkpoint(const std::string& path, int max_batch,
                                  const std::function<void(VaeSpec&)>& adjust = {});
// The loaded VAE, or an error naming the checkpoint's family and what the command needs.
Vae<float>& require_vae(const LoadedModel& m, const std::string& checkpoint,
                        const std::string& command);
// Throws "<data>: images are HxWxC but <checkpoint> was trained on ..." when they differ.
void require_same_images(const ImageGeom& data, const std::string& data_name,
                         const LoadedModel& model, const std::string& checkpoint);

}  // namespace distvae
