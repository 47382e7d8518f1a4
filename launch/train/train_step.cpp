// The step of each model family. Every random draw is keyed by the image (rng.h), so N ranks
// with B/N images each take the same step as one rank with B.
#include "launch/train/train_step.h"

#include <chrono>
#include <cmath>

#include "core/rng.h"
#include "dist/world.h"

namespace distvae {

VaeStepArgs step_args(const Config& c, Communicator& comm) {
  VaeStepArgs args;
  args.seed = uint64_t(c.train.seed);
  args.free_bits = c.objective.free_bits;
  args.global_batch = int64_t(c.train.batch) * comm.size();
  args.allreduce_sum = [&comm](double* v, size_t n) { comm.allreduce(v, n, ReduceOp::sum); };
  return args;
}

OptimizerConfig optimizer_config(const OptimConfig& o) {
  OptimizerConfig c;
  c.kind = o.kind;
  c.lr = o.lr, c.beta1 = o.beta1, c.beta2 = o.beta2, c.eps = o.eps;
  c.weight_decay = o.weight_decay, c.momentum = o.momentum;
  c.schedule = o.schedule, c.lr_min = o.lr_min;
  return c;
}

Trainee::Trainee(const Config& c, const ImageGeom& g, Backend<float>& be, Communicator& comm, int B)
    : c_(c), be_(be), comm_(comm), model_(build_model(c, g, be, B)) {
  model_.init(uint64_t(c.train.seed));
  const size_t bucket_bytes = size_t(c.train.bucket_kb) * 1024;
  overlap_ = overlap_enabled(c.train.overlap, discover_placement(c.train.threads));
  const std::vector<Network<float>*> trained = model_.trained();
  num_main_ = trained.size() - (model_.discriminator() ? 1 : 0);
  // Gradients in node shared memory where the communicator has it (the same answer on every
  // rank); the update is split over the node's ranks when every network got it and nothing
  // overlaps, and then the values go there too: the all-gather reads them from the peers.
  bool all_shared = comm.size() > 1 && c.train.shm_allreduce && c.train.backend != "cuda";
  for (Network<float>* n : trained) {
    std::shared_ptr<float> g = all_shared ? comm.alloc_reducible(n->params().size()) : nullptr;
    all_shared = all_shared && g;
    if (g) n->params().adopt_grads(g);
  }
  split_ = all_shared && !overlap_;
  reduction_ = comm.size() == 1            ? "none (one rank)"
               : c.train.backend == "cuda" ? "NCCL"
               : !c.train.shm_allreduce    ? "MPI_Allreduce (train.shm_allreduce: false)"
               : !all_shared               ? "MPI_Allreduce (no node shared memory: /dev/shm "
                                             "missing or too small on some rank)"
               : split_ ? "node shared memory; each rank updates its share of the parameters"
                        : "node shared memory, bucket by bucket during backward";
  nets_.resize(trained.size());
  for (size_t i = 0; i < trained.size(); ++i) {
    TrainedNet& t = nets_[i];
    t.net = trained[i];
    ParamStore<float>& ps = t.net->params();
    comm.broadcast(ps.values(), ps.values_size() * sizeof(float), 0);  // one start everywhere
    if (split_)
      if (std::shared_ptr<float> v = comm.alloc_reducible(ps.values_size())) ps.adopt_values(v);
    t.optim = i < num_main_ ? &c.optim : &c.disc_optim;
    t.sync =
        std::make_unique<GradSync>(comm, ps.grads(), ps.buckets(bucket_bytes), overlap_, split_);
    t.opt = std::make_unique<OptimizerStateOwner<float>>(be, optimizer_config(*t.optim), ps.size());
  }
  if (model_.gan) model_.gan->take_snapshot();  // G' = G after the broadcast
  // Batch norms normalize by the global batch, so the step does not depend on the split.
  if (comm.size() > 1)
    for (Network<float>* n : checkpointed(model_))
      n->set_stats_reduce(
          [&comm](float* sums, size_t n_sums) { comm.allreduce(sums, n_sums, ReduceOp::sum); });
  if (model_.latent_disc) {
    zq_ = be.alloc(size_t(B) * c.model.latent);
    zp_ = be.alloc(size_t(B) * c.model.latent);
    host_zp_.resize(size_t(B) * c.model.latent);
  }
}

Trainee::~Trainee() {
  if (zq_) be_.release(zq_);
  if (zp_) be_.release(zp_);
}

std::vector<NetState> Trainee::checkpoint_states() {
  std::vector<NetState> v;
  for (TrainedNet& n : nets_) v.push_back({n.net, n.opt.get()});
  if (model_.gan) v.push_back({&model_.gan->snapshot(), nullptr});
  return v;
}

void Trainee::update(TrainedNet& n, double progress) {
  ParamStore<float>& ps = n.net->params();
  if (n.optim->grad_clip > 0) {
    if (split_) comm_.all_gather(ps.grads(), ps.size());  // the norm is over every gradient
    clip_grad_norm(be_, ps.grads(), ps.size(), n.optim->grad_clip);
  }
  // This rank's slice of the parameters and of the optimizer's moments (all of them unsplit).
  const auto [lo, hi] = n.sync->owned();
  OptimizerState<float>& whole = n.opt->state();
  OptimizerState<float> part{whole.m ? whole.m + lo : nullptr, whole.v ? whole.v + lo : nullptr,
                             hi - lo, whole.step};
  const OptimizerConfig oc = optimizer_config(*n.optim);
  optimizer_step(be_, oc, part, ps.values() + lo, ps.grads() + lo, hi - lo,
                 scheduled_lr(oc, progress));
  whole.step = part.step;
  if (split_) comm_.all_gather(ps.values(), ps.size());
}

void Trainee::gather_optimizer_state() {
  if (!split_) return;
  for (TrainedNet& n : nets_) {
    OptimizerState<float>& s = n.opt->state();
    for (float* moment : {s.m, s.v})
      if (moment) comm_.all_gather(moment, s.n);
  }
}

void Trainee::update_main(double progress) {
  // The proximal term's G' is the generator from before its previous update.
  if (model_.gan) model_.gan->take_snapshot();
  for (size_t i = 0; i < num_main_; ++i) update(nets_[i], progress);
}

StepResult Trainee::disc_updates(const float* x, int B, const uint64_t* keys, uint64_t seed,
                                 double progress) {
  StepResult r;
  TrainedNet& d = nets_.back();
  const int L = c_.model.latent;
  for (int k = 0; k < c_.objective.n_disc; ++k) {
    d.sync->begin_step();
    const GradReadyFn ready = [&](size_t offset) { d.sync->on_ready(offset); };
    if (model_.gan) {
      r.disc = model_.gan->disc_step(x, B, seed, keys, k, ready);
    } else {
      // Class q: z ~ q(z|x) for the step's images with fresh noise; class p: fresh N(0, I).
      if (k == 0) model_.vae->encode_posterior(x, B);  // T's steps leave the encoder alone
      model_.vae->draw_posterior(B, seed, rng_purpose::disc_q_noise, keys, uint64_t(k), zq_);
      // Row by row over the compute threads, as the VAE draws its noise (one stream per image).
#pragma omp parallel for if (B * L >= 2048)
      for (int b = 0; b < B; ++b)
        normal_fill(seed, stream_id(rng_purpose::disc_p_sample, keys[b]), uint64_t(k) * L,
                    size_t(L), host_zp_.data() + size_t(b) * L);
      be_.to_device(host_zp_.data(), zp_, size_t(B) * L);
      r.disc = model_.latent_disc->loss_and_grad(zq_, zp_, B, ready);
    }
    d.sync->finish();
    exposed_ += d.sync->exposed_seconds();
    // The all-reduced gradients are the same on every rank, so every rank skips alike; with a
    // split update each rank sees its slice only, and they agree through one more all-reduce.
    const std::span<const float> g = d.reduced_grads();
    double bad = !std::isfinite(r.disc.loss) || !be_.all_finite(g.data(), g.size()) ? 1 : 0;
    if (split_) comm_.allreduce(&bad, 1, ReduceOp::sum);
    if (bad > 0) {
      ++r.disc_skipped;
      continue;
    }
    update(d, progress);
  }
  return r;
}

StepResult Trainee::step(const float* x, int B, const uint64_t* keys, VaeStepArgs& args,
                         double progress) {
  // Batch norm by the batch inside the step, by its running averages everywhere else
  // (validation, samples, evaluation).
  struct TrainingMode {
    Model& m;
    ~TrainingMode() { m.set_training(false); }
  } mode{model_};
  model_.set_training(true);
  exposed_ = 0;
  StepResult r;
  if (model_.gan) model_.gan->set_progress(progress);  // the annealed instance noise
  const auto t_disc = std::chrono::steady_clock::now();
  if (model_.discriminator()) r = disc_updates(x, B, keys, args.seed, progress);
  disc_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_disc).count();
  disc_exposed_ = exposed_;
  const std::span<TrainedNet> main = main_nets();
  for (TrainedNet& n : main) n.sync->begin_step();
  if (model_.gan) {
    r.gen = model_.gan->gen_step(B, args.seed, keys,
                                 [&](size_t offset) { main[0].sync->on_ready(offset); });
  } else {
    args.noise_keys = keys;
    args.encoder_ready = [&](size_t offset) { main[0].sync->on_ready(offset); };
    args.decoder_ready = [&](size_t offset) { main[1].sync->on_ready(offset); };
    r.vae = model_.vae->train_step(x, B, args);
  }
  for (auto it = main.rbegin(); it != main.rend(); ++it) {
    it->sync->finish();
    exposed_ += it->sync->exposed_seconds();
  }
  return r;
}

}  // namespace distvae
