// The training loop. Rank 0 prints and writes files; every rank computes the same updates.
#include "launch/train/trainer.h"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <span>

#include "core/backends/cuda_status.h"
#include "core/backends/dnnl.h"
#include "core/hash.h"
#include "core/parallel_for.h"
#include "core/rng.h"
#include "dist/grad_sync.h"
#include "dist/nccl_communicator.h"
#include "dist/watchdog.h"
#include "dist/world.h"
#include "io/data/dataset.h"
#include "io/data/image_set.h"
#include "io/data/loader.h"
#include "io/hdf5/checkpoint.h"
#include "io/image/image.h"
#include "io/image/png.h"
#include "io/output/metrics_log.h"
#include "io/output/report.h"
#include "launch/train/batch_feed.h"
#include "launch/train/model_setup.h"
#include "launch/train/preemption.h"
#include "launch/train/progress.h"
#include "launch/train/run_dir.h"
#include "launch/train/step_agreement.h"
#include "launch/train/train_step.h"

namespace distvae {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Mean ELBO of a whole image set, binarized once with a fixed seed (evaluation protocol).
double mean_elbo(Vae<float>& vae, const ImageSet& set, const Config& c, int batch,
                 std::vector<float>& x, const std::function<void()>& tick) {
  const int64_t seed = c.data.binarize == "dynamic" ? c.eval.binarize_seed : -1;
  std::vector<int64_t> idx(static_cast<size_t>(batch));
  std::vector<uint64_t> key(static_cast<size_t>(batch));
  double sum = 0;
  for (int64_t first = 0; first < set.count; first += batch) {
    const int B = int(std::min<int64_t>(batch, set.count - first));
    for (int b = 0; b < B; ++b) idx[size_t(b)] = first + b, key[size_t(b)] = uint64_t(first + b);
    decode_batch(set.pixels.data(), set.geom, idx.data(), key.data(), B, seed, x.data());
    tick();
    sum += vae.evaluate_elbo(x.data(), B, uint64_t(c.eval.binarize_seed), key.data(), nullptr,
                             nullptr, nullptr)
               .elbo;
  }
  return sum / double(set.count);
}

void write_grids(Model& model, const ImageSet& shown, const Config& c, const std::string& dir) {
  const ImageGeom& g = shown.geom;
  const int n = std::min<int>(c.train.sample_grid, model.trained()[0]->max_batch());
  const int cols = int(std::ceil(std::sqrt(double(n))));
  const int L = c.model.latent, D = int(g.pixels());
  std::vector<float> z(size_t(n) * L), img(size_t(n) * D);
  // The same z every epoch, so successive grids show the model learning. (For the implicit
  // prior these are draws of N(0, I), not of the learned prior: see distvae sample.)
  normal_fill(uint64_t(c.train.seed), stream_id(rng_purpose::prior_sample, 0), 0, z.size(),
              z.data());
  if (model.gan)
    model.gan->generate(z.data(), n, img.data());
  else
    model.vae->decode_mean(z.data(), n, img.data());
  write_png(dir + "/samples.png",
            make_grid(img.data(), n, int(g.channels), int(g.height), int(g.width), cols, 2));
  if (!model.vae) return;
  Vae<float>& vae = *model.vae;
  // Reconstructions: rows alternate inputs and their reconstructions from the posterior mean.
  const int m = std::min<int64_t>(n / 2, shown.count);
  std::vector<int64_t> idx(static_cast<size_t>(m));
  std::vector<uint64_t> key(static_cast<size_t>(m));
  std::iota(idx.begin(), idx.end(), 0);
  std::vector<float> x(size_t(m) * D), mu(size_t(m) * L), rec(size_t(m) * D);
  decode_batch(shown.pixels.data(), g, idx.data(), key.data(), m, -1, x.data());
  vae.encode(x.data(), m, mu.data(), nullptr);
  vae.decode_mean(mu.data(), m, rec.data());
  std::vector<float> pairs;
  for (int r0 = 0; r0 < m; r0 += cols) {
    const int k = std::min(cols, m - r0);
    for (const auto* src : {&x, &rec}) {
      pairs.insert(pairs.end(), src->begin() + size_t(r0) * D, src->begin() + size_t(r0 + k) * D);
      pairs.insert(pairs.end(), size_t(cols - k) * D, 0.0f);
    }
  }
  write_png(dir + "/recon.png", make_grid(pairs.data(), int(pairs.size() / D), int(g.channels),
                                          int(g.height), int(g.width), cols, 2));
  // A latent interpolation strip between the first two shown images' posterior means.
  if (m >= 2) {
    constexpr int kSteps = 10;
    std::vector<float> z(size_t(kSteps) * L), strip(size_t(kSteps) * D);
    for (int s = 0; s < kSteps; ++s)
      for (int d = 0; d < L; ++d) {
        const float t = float(s) / float(kSteps - 1);
        z[size_t(s) * L + d] = (1 - t) * mu[size_t(d)] + t * mu[size_t(L + d)];
      }
    vae.decode_mean(z.data(), kSteps, strip.data());
    write_png(dir + "/interp.png", make_grid(strip.data(), kSteps, int(g.channels), int(g.height),
                                             int(g.width), kSteps, 2));
  }
}

std::vector<std::string> expand_glob_for(const std::string& pattern, const std::string& key) {
  if (pattern.empty()) throw std::runtime_error(key + ": no data files given");
  try {
    return expand_glob(pattern);
  } catch (const std::exception& e) {
    throw std::runtime_error(key + ": " + e.what());
  }
}

// The decoded bytes preload would hold (data.max_images applied), not the compressed file sizes:
// gzip shards of simple images are 50x smaller on disk than in memory.
int64_t dataset_bytes(const std::vector<std::string>& files, int64_t max_images) {
  const DatasetInfo info = Hdf5Dataset(files).info();
  const int64_t n = max_images > 0 ? std::min(info.count, max_images) : info.count;
  return n * info.image_bytes();
}

std::string geom_text(const ImageGeom& g) {
  return std::to_string(g.height) + "x" + std::to_string(g.width) + "x" +
         std::to_string(g.channels);
}

// Every rank must run the same config on the same files; a mismatch stops all of them, naming
// the first rank that differs from rank 0.
// The loader ring's buffers: page-locked for the cuda backend (uploads DMA straight from them),
// plain heap memory otherwise.
BatchAllocator batch_allocator(const HostBufferAllocator& a) {
  return a.alloc ? BatchAllocator{a.alloc, a.free} : BatchAllocator{};
}

void check_same_setup(Communicator& comm, const std::string& config_text,
                      const std::vector<std::string>& files) {
  if (comm.size() == 1) return;
  std::string all = config_text;
  for (const auto& f : files) all += "\n" + f;
  const uint64_t mine = fnv1a(all);
  uint64_t root_hash = mine;
  comm.broadcast(&root_hash, sizeof root_hash, 0);
  std::vector<double> differs(size_t(comm.size()), 0.0);
  differs[size_t(comm.rank())] = mine != root_hash ? 1.0 : 0.0;
  comm.allreduce(differs.data(), differs.size(), ReduceOp::sum);
  for (int r = 0; r < comm.size(); ++r)
    if (differs[size_t(r)] != 0)
      throw std::runtime_error("rank " + std::to_string(r) +
                               " has a different resolved config or data file list than rank 0 "
                               "(every rank must be started with the same config and files)");
}

}  // namespace

int train(const Config& c, const TrainOptions& o, Communicator& launch_comm) {
  // A GPU run reduces its device buffers through NCCL, bootstrapped over launch_comm (which keeps
  // carrying the host-memory collectives); creating it also picks this rank's GPU, so it comes
  // before the backend.
  const std::unique_ptr<Communicator> gpu_comm =
      c.train.backend == "cuda" ? make_nccl_communicator(launch_comm) : nullptr;
  Communicator& comm = gpu_comm ? *gpu_comm : launch_comm;
  const bool root = comm.rank() == 0;
  auto say = [&](const char* fmt, auto... args) {
    if (root && !o.quiet) {
      std::printf(fmt, args...);
      std::fflush(stdout);
    }
  };
  const LocalPlacement place = discover_placement(c.train.threads);
  omp_set_num_threads(place.threads);

  // Everything read from HDF5 on this thread happens before the loader thread starts: serial
  // HDF5 is not thread-safe. The validation set and a few images to show are held in memory.
  ImageSet val_set;
  if (!c.data.validation.empty()) val_set = load_image_set(c.data.validation, 0, "data.validation");
  const ImageSet shown = val_set.count > 0
                             ? ImageSet{}
                             : load_image_set(c.data.train, c.train.sample_grid, "data.train");
  const std::vector<std::string> train_files = expand_glob_for(c.data.train, "data.train");
  const int B = c.train.batch;
  const int world = comm.size();
  const int64_t bin_seed = c.data.binarize == "dynamic" ? c.train.seed : -1;
  int loader_epoch = 0;  // read by decode on the loader thread; set before start_epoch
  int64_t N = 0;         // images per epoch over all ranks, for the per-image random streams
  ImageGeom g;
  LoaderOptions lo;
  lo.seed = uint64_t(c.train.seed), lo.rank = comm.rank(), lo.world = world, lo.batch = B;
  lo.window_chunks = c.data.window_chunks, lo.ring_batches = c.data.prefetch_batches;
  lo.threads = c.data.loader_threads;
  lo.max_images = c.data.max_images;
  lo.preload = c.data.preload == "on" ||
               (c.data.preload == "auto" &&
                dataset_bytes(train_files, c.data.max_images) < (int64_t(2) << 30));
  const bool decode_on_compute_threads = decode_on_compute(c.data.decode_on, place);
  if (decode_on_compute_threads) lo.decode_on_consumer = compute_parallel_for;
  Loader loader(
      train_files, lo,
      [&](const uint8_t* const* images, const int64_t* index, int n, float* out) {
        thread_local std::vector<uint64_t> key;  // parts of a batch may decode concurrently
        key.resize(size_t(n));
        for (int b = 0; b < n; ++b)
          key[size_t(b)] = uint64_t(loader_epoch) * uint64_t(N) + uint64_t(index[b]);
        decode_images(images, g, key.data(), n, bin_seed, out);
      },
      batch_allocator(host_buffer_allocator(c.train.backend)));
  N = loader.info().count;
  g = ImageGeom{loader.info().height, loader.info().width, loader.info().channels};
  if (val_set.count > 0 && (val_set.geom.height != g.height || val_set.geom.width != g.width ||
                            val_set.geom.channels != g.channels))
    throw std::runtime_error("data.validation: images are " + geom_text(val_set.geom) +
                             " but data.train's are " + geom_text(g));

  check_same_setup(comm, dump_config(c), train_files);

  auto backend = make_backend(c.train.backend);
  Trainee trainee(c, g, *backend, comm, B);
  Model& model = trainee.model();
  const bool gan = model.gan != nullptr;

  if (root) prepare_run_dir(o.run_dir);
  comm.barrier();
  int start_epoch = 0;
  int64_t resumed_step = 0, resumed_skip = 0;  // steps already taken, in all and in the epoch
  bool resumed = false;
  if (o.resume) {
    for (const std::string& p : list_checkpoints(o.run_dir)) {
      Checkpoint ck;
      try {
        ck = read_checkpoint(p);  // a corrupt or truncated file: fall back to an older one
      } catch (const std::exception& e) {
        say("skipping checkpoint %s: %s\n", p.c_str(), e.what());
        continue;
      }
      // A checkpoint of another architecture is the user's mistake, not damage: stop.
      load_networks(ck, p, *backend, trainee.checkpoint_states());
      start_epoch = int(ck.ints.at("epoch"));
      resumed_step = ck.ints.at("step");
      auto within = ck.ints.find("step_in_epoch");
      resumed_skip = within == ck.ints.end() ? 0 : within->second;
      say("resuming from %s (epoch %d, step %lld of it)\n", p.c_str(), start_epoch + 1,
          (long long)resumed_skip);
      resumed = true;
      break;
    }
    if (!resumed) say("--resume: no usable checkpoint in %s; starting fresh\n", o.run_dir.c_str());
  }
  if (root) {
    std::ofstream(o.run_dir + "/config.yaml") << dump_config(c);
  }
  std::unique_ptr<MetricsLog> log;
  if (root) log = std::make_unique<MetricsLog>(o.run_dir + "/metrics.jsonl");
  // With several ranks, a rank that stops (SIGSTOP, stuck I/O) must not leave the others waiting
  // in a collective forever: heartbeats in the run directory, abort after train.hang_timeout.
  std::unique_ptr<Watchdog> watchdog;
  if (world > 1 && c.train.hang_timeout > 0)
    watchdog =
        std::make_unique<Watchdog>(o.run_dir + "/heartbeat", comm.rank(), world,
                                   c.train.hang_timeout, [&comm](const std::string& msg) {
                                     std::fprintf(stderr, "distvae: error: %s\n", msg.c_str());
                                     std::fflush(stderr);
                                     comm.abort(kExitHung);
                                   });
  const std::function<void()> beat = [&] {
    if (watchdog) watchdog->beat();
  };

  say("distvae train: %lld images %lldx%lldx%lld from %zu file(s) (%s, decoded on the %s), batch "
      "%d x %d rank(s) = %d, backend %s, %d thread(s) per rank (%s)\n",
      (long long)N, (long long)g.height, (long long)g.width, (long long)g.channels,
      train_files.size(), lo.preload ? "preloaded" : "streamed",
      decode_on_compute_threads ? "compute threads" : "loader thread", B, world, B * world,
      (backend->name() == "dnnl" ? "dnnl, ISA " + dnnl_cpu_isa() : backend->name()).c_str(),
      place.threads, place.threads_from.c_str());
  std::string params_text;
  for (const TrainedNet& n : trainee.all_nets())
    params_text += n.net->name() + " " + std::to_string(n.net->params().size()) + " in " +
                   std::to_string(n.sync->num_buckets()) + " bucket(s), ";
  const bool overlap = trainee.overlap();
  say("model %s; parameters: %soverlap %s%s\n", c.model.family.c_str(), params_text.c_str(),
      overlap ? "on" : "off",
      c.train.overlap != "auto" ? ""
      : overlap                 ? " (auto: a spare CPU for the communication thread)"
                                : " (auto: no spare CPU for the communication thread)");
  if (world > 1) say("gradient all-reduce: %s\n", trainee.reduction().c_str());

  const size_t D = size_t(g.pixels());
  std::vector<float> x(size_t(B) * D);  // host staging for validation and grids
  BatchFeed feed(*backend, loader, B, D, N);
  int64_t step = 0;     // optimizer steps taken, over all epochs
  int64_t skipped = 0;  // steps skipped for non-finite values (train.on_nonfinite: skip)
  auto t_checkpoint = Clock::now();
  Progress progress(root && !o.quiet, o.log_every_seconds, c.train.epochs, stdout,
                    gan ? "g_loss" : "elbo", gan ? "d_loss" : "kl");
  bool saved_at_step_end = false;  // the last step of an epoch already wrote its checkpoint
  VaeStepArgs args;
  args.seed = uint64_t(c.train.seed);
  args.free_bits = c.objective.free_bits;
  args.global_batch = int64_t(B) * world;
  args.allreduce_sum = [&](double* v, size_t n) { comm.allreduce(v, n, ReduceOp::sum); };

  // Called on every rank, rank 0 writes. Every rank holds the same parameters, but the
  // optimizer's moments may be split over the ranks, so they are gathered first. epochs_done
  // counts whole epochs; a preempted run also records how far into the next one it got.
  auto save_checkpoint = [&](int epochs_done, int64_t step_in_epoch) {
    trainee.gather_optimizer_state();
    if (!root) return;
    Checkpoint ck;
    save_networks(ck, *backend, trainee.checkpoint_states());
    ck.ints["epoch"] = epochs_done;
    ck.ints["step_in_epoch"] = step_in_epoch;
    ck.ints["step"] = step;
    ck.strings["config"] = dump_config(c);
    ck.ints["image.height"] = g.height, ck.ints["image.width"] = g.width;
    ck.ints["image.channels"] = g.channels;
    write_checkpoint(checkpoint_path(o.run_dir, epochs_done, step_in_epoch), ck);
    prune_checkpoints(o.run_dir, c.train.keep_checkpoints);
  };
  arm_preemption();

  const int end_epoch = o.stop_after_epochs > 0
                            ? std::min(c.train.epochs, start_epoch + o.stop_after_epochs)
                            : c.train.epochs;
  for (int epoch = start_epoch; epoch < end_epoch; ++epoch) {
    loader_epoch = epoch;
    // Resuming inside an epoch: the plan is deterministic, so the batches already trained on
    // are drawn again and passed over.
    const int64_t first_step = epoch == start_epoch ? resumed_skip : 0;
    // The same on every rank (shard plan).
    const int64_t steps_per_epoch = feed.start_epoch(epoch, first_step);
    if (epoch == start_epoch) step = resumed_step;
    const auto t_epoch = Clock::now();
    auto t_log = Clock::now();
    // Sums since the last record: elbo, log p(x|z), kl, prior cost, images (VAE families), or
    // generator loss, proximal term (gan); then discriminator loss, accuracy, steps.
    double acc[8] = {};
    double exposed = 0;  // seconds blocked on gradient all-reduce since the last record
    double kl_dim_min = std::numeric_limits<double>::quiet_NaN();  // free bits: lowest dim KL
    double data_wait = loader.wait_seconds(), data_decode = loader.decode_seconds();
    int64_t steps_in_log = 0;
    progress.start_epoch(epoch, steps_per_epoch, first_step);
    for (int64_t s = first_step; s < steps_per_epoch; ++s) {
      const BatchFeed::Step in = feed.next();
      args.noise_keys = in.keys;
      const double epochs_done = epoch + double(s) / double(steps_per_epoch);
      args.beta = c.objective.beta * (c.objective.warmup_epochs > 0
                                          ? std::min(1.0, epochs_done / c.objective.warmup_epochs)
                                          : 1.0);
      const StepResult r = trainee.step(in.x, B, in.keys, args, epochs_done / c.train.epochs);
      const VaeStats& st = r.vae;
      exposed += trainee.exposed_seconds();
      const StepAgreement f =
          agree_on_step(r, trainee, *backend, comm,
                        c.train.checkpoint_minutes > 0 &&
                            seconds_since(t_checkpoint) >= 60.0 * c.train.checkpoint_minutes);
      if (const std::string& bad = f.nonfinite; !bad.empty()) {
        if (c.train.on_nonfinite == "stop") {
          const auto kept = list_checkpoints(o.run_dir);
          if (root)
            std::fprintf(stderr,
                         "distvae: error: step %lld: non-finite %s; stopping without updating "
                         "the parameters (train.on_nonfinite: stop); last good checkpoint: %s\n",
                         (long long)(step + 1), bad.c_str(),
                         kept.empty() ? "none" : kept.front().c_str());
          return kExitNonFinite;
        }
        ++skipped;  // train.on_nonfinite: skip -- this step changes nothing
        if (skipped <= 3 || skipped % 100 == 0)
          say("step %lld: non-finite %s; step skipped (%lld so far)\n", (long long)(step + 1),
              bad.c_str(), (long long)skipped);
      } else {
        trainee.update_main(epochs_done / c.train.epochs);
        if (gan) {
          acc[0] += r.gen.loss * B, acc[1] += r.gen.proximal * B;
          progress.step(r.gen.loss * B, r.disc.loss * B, B);
        } else {
          acc[0] += st.elbo, acc[1] += st.log_px_given_z, acc[2] += st.kl, acc[3] += st.prior_cost;
          progress.step(st.elbo, st.kl, st.images);
        }
        acc[4] += B;
        acc[5] += r.disc.loss, acc[6] += r.disc.accuracy, acc[7] += 1;
      }
      ++steps_in_log;
      if (!std::isnan(st.kl_dim_min))
        kl_dim_min = std::isnan(kl_dim_min) ? st.kl_dim_min : std::min(kl_dim_min, st.kl_dim_min);
      if ((step + 1) % c.train.log_every == 0 || s + 1 == steps_per_epoch) {
        comm.allreduce(acc, 8, ReduceOp::sum);
        const double secs = seconds_since(t_log);
        const double n = acc[4];  // 0 when every step was skipped: the means are then NaN (null)
        std::vector<std::pair<std::string, double>> rec = {
            {"step", double(step + 1)}, {"epoch", epochs_done + 1.0 / steps_per_epoch}};
        if (gan) {
          rec.push_back({"gen_loss", acc[0] / n});
          if (c.objective.proximal > 0) rec.push_back({"proximal", acc[1] / n});
        } else {
          rec.insert(rec.end(), {{"elbo", acc[0] / n},
                                 {"log_px_given_z", acc[1] / n},
                                 {"kl", acc[2] / n},
                                 {"beta", args.beta}});
          // implicit prior: E_q[T(z)] (the prior cost is -T); aae: E_q softplus(T(z))
          if (model.vae->prior_kind() == PriorKind::implicit)
            rec.push_back({"prior_t", -acc[3] / n});
          if (model.vae->prior_kind() == PriorKind::adversarial)
            rec.push_back({"prior_softplus_t", acc[3] / n});
        }
        if (model.discriminator())  // means over steps and ranks
          rec.insert(rec.end(),
                     {{"disc_loss", acc[5] / acc[7]}, {"disc_accuracy", acc[6] / acc[7]}});
        rec.insert(
            rec.end(),
            {{"lr", scheduled_lr(optimizer_config(c.optim), epochs_done / c.train.epochs)},
             {"skipped_steps", double(skipped)},
             {"images_per_s", n / secs},
             {"comm_exposed_ms", 1e3 * exposed / double(steps_in_log)},
             {"data_wait_ms", 1e3 * (loader.wait_seconds() - data_wait) / double(steps_in_log)},
             {"data_decode_ms",
              1e3 * (loader.decode_seconds() - data_decode) / double(steps_in_log)}});
        if (!std::isnan(kl_dim_min)) rec.push_back({"kl_dim_min", kl_dim_min});
        if (log) log->write(rec);
        std::fill(std::begin(acc), std::end(acc), 0.0);
        exposed = 0;
        kl_dim_min = std::numeric_limits<double>::quiet_NaN();
        data_wait = loader.wait_seconds(), data_decode = loader.decode_seconds();
        steps_in_log = 0;
        t_log = Clock::now();
      }
      ++step;
      beat();
      const bool epoch_end = s + 1 == steps_per_epoch;
      const bool timed = f.checkpoint_due || (c.train.checkpoint_every_steps > 0 &&
                                              step % c.train.checkpoint_every_steps == 0);
      saved_at_step_end = timed || f.preempt;
      if (saved_at_step_end) {
        save_checkpoint(epoch_end ? epoch + 1 : epoch, epoch_end ? 0 : s + 1);
        t_checkpoint = Clock::now();
      }
      // Preemption: a signal on any rank stops all of them at this same step.
      if (f.preempt) {
        comm.barrier();
        const bool requeued = root && c.train.requeue && request_slurm_requeue();
        say("preempted: checkpoint written at epoch %d, step %lld%s; exiting with code %d "
            "(continue with --resume)\n",
            epoch + 1, (long long)(s + 1), requeued ? ", job requeued" : "", kExitPreempted);
        return kExitPreempted;
      }
    }
    progress.end_epoch();
    const double epoch_secs = seconds_since(t_epoch);
    if (root) {
      if (val_set.count > 0 && model.vae) {
        const double ve = mean_elbo(*model.vae, val_set, c, B, x, beat);
        log->write({{"epoch", double(epoch + 1)}, {"val_elbo", ve}, {"epoch_seconds", epoch_secs}});
        say("epoch %d done in %.1f s  validation elbo %.2f nats\n", epoch + 1, epoch_secs, ve);
      } else {
        say("epoch %d done in %.1f s\n", epoch + 1, epoch_secs);
      }
      write_grids(model, val_set.count > 0 ? val_set : shown, c, o.run_dir);
    }
    const bool last = epoch + 1 == end_epoch;
    if (((epoch + 1) % c.train.checkpoint_every == 0 || last) && !saved_at_step_end)
      save_checkpoint(epoch + 1, 0);
    if (root) write_report(o.run_dir);
    comm.barrier();
  }
  say("run directory: %s (samples.png%s, metrics.jsonl, checkpoints/)\n", o.run_dir.c_str(),
      gan ? "" : ", recon.png");
  return 0;
}

}  // namespace distvae
