// One training step of any model family (docs/design.md section 3): the discriminator's n_disc
// updates (each all-reduced and applied here), then the model's gradients, all-reduced and left for
// the trainer to apply once every rank has agreed the step is good.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dist/grad_sync.h"
#include "launch/config/config.h"
#include "launch/train/model_setup.h"

namespace distvae {

// A trained network with its bucketed gradient all-reduce and its optimizer.
struct TrainedNet {
  Network<float>* net = nullptr;
  std::unique_ptr<GradSync> sync;
  std::unique_ptr<OptimizerStateOwner<float>> opt;
  const OptimConfig* optim = nullptr;  // the schedule's settings
  // The gradients this rank holds all-reduced after the step: all of them, or its slice when the
  // node's ranks split the update. What the non-finite checks read.
  std::span<const float> reduced_grads() const {
    const auto [lo, hi] = sync->owned();
    return {net->params().grads() + lo, hi - lo};
  }
};

struct StepResult {
  VaeStats vae;          // VAE families: sums over this rank's images
  GanGenStats gen;       // gan: this rank's means
  DiscStats disc;        // families with a discriminator: its last update's, this rank's means
  int disc_skipped = 0;  // discriminator updates skipped for non-finite gradients (every rank)
};

// A network's optimizer section of the config as core's optimizer takes it.
OptimizerConfig optimizer_config(const OptimConfig& o);

// The step's arguments from the config, for `distvae train` and `distvae bench` alike: seed, free
// bits, the global batch and the all-reduce of the loss sums. beta stays 1 (the caller sets it:
// the trainer per step for KL warm-up).
VaeStepArgs step_args(const Config& c, Communicator& comm);

class Trainee {
 public:
  // B: images per rank per step. Broadcasts rank 0's initial parameters to every rank.
  Trainee(const Config& c, const ImageGeom& g, Backend<float>& be, Communicator& comm, int B);
  Trainee(const Trainee&) = delete;
  Trainee& operator=(const Trainee&) = delete;
  ~Trainee();

  Model& model() { return model_; }
  // The networks the trainer updates after the step (encoder and decoder, or the generator).
  std::span<TrainedNet> main_nets() { return {nets_.data(), num_main_}; }
  std::span<TrainedNet> all_nets() { return nets_; }
  // Checkpoint order: every trained network with its optimizer, then the GAN's snapshot G'.
  std::vector<NetState> checkpoint_states();

  // x: (B, C*H*W) in the backend's memory; keys: per image, (epoch * N + global index).
  // args carries the VAE's seed, beta and free-bits settings; progress in [0, 1] for schedules.
  StepResult step(const float* x, int B, const uint64_t* keys, VaeStepArgs& args, double progress);
  // Applies the main networks' update (gradients already all-reduced), with the scheduled rate.
  void update_main(double progress);
  double exposed_seconds() const { return exposed_; }
  // Before a checkpoint, on every rank: with a split update each rank's optimizer moments are
  // current only on its slice; this gathers them so rank 0 holds them all.
  void gather_optimizer_state();
  // train.overlap resolved for this placement: all-reduces start during backward.
  bool overlap() const { return overlap_; }
  // How gradients are reduced across ranks, for the start-up report.
  const std::string& reduction() const { return reduction_; }
  // Of the last step(): seconds in the discriminator's updates (their forward, backward,
  // all-reduce and optimizer), and the part of exposed_seconds() spent in them. For the
  // step-time breakdown of `distvae bench`; two clock reads per step.
  double disc_seconds() const { return disc_seconds_; }
  double disc_exposed_seconds() const { return disc_exposed_; }

 private:
  void update(TrainedNet& n, double progress);
  StepResult disc_updates(const float* x, int B, const uint64_t* keys, uint64_t seed,
                          double progress);

  const Config& c_;
  Backend<float>& be_;
  Communicator& comm_;
  Model model_;
  std::vector<TrainedNet> nets_;  // main networks first, then the discriminator
  size_t num_main_ = 0;
  bool overlap_ = false;
  // The node's ranks split each network's reduction and optimizer update (dist/shm_reduce.h):
  // each updates its slice, then all gather the parameters.
  bool split_ = false;
  std::string reduction_;
  float *zq_ = nullptr, *zp_ = nullptr;  // (B, latent): the latent discriminator's two classes
  std::vector<float> host_zp_;
  double exposed_ = 0;
  double disc_seconds_ = 0, disc_exposed_ = 0;
};

}  // namespace distvae
