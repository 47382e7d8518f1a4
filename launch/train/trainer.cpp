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
#include <optional>

#include "core/backends/cuda_status.h"
#include "core/backends/dnnl.h"
#include "core/hash.h"
#include "core/models/objectives.h"
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
#include "launch/train/model_description.h"
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
                 const std::function<void()>& tick) {
  const int64_t seed = c.data.binarize == "dynamic" ? c.eval.binarize_seed : -1;
  std::vector<float> x(size_t(batch) * size_t(set.geom.pixels()));
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
    model.vae->decode_mean(z.data(), n, img.data(), uint64_t(c.train.seed));
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
  vae.decode_mean(mu.data(), m, rec.data(), uint64_t(c.train.seed));
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
    vae.decode_mean(z.data(), kSteps, strip.data(), uint64_t(c.train.seed));
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

// The loader ring's buffers: page-locked for the cuda backend (uploads DMA straight from them),
// plain heap memory otherwise.
BatchAllocator batch_allocator(const HostBufferAllocator& a) {
  return a.alloc ? BatchAllocator{a.alloc, a.free} : BatchAllocator{};
}

// Every rank must run the same config on the same files; a mismatch stops all of them, naming
// the first rank that differs from rank 0.
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

// The training data: the validation set and the images the grids show, held in memory, and the
// loader over the training files. The loader's decode reads epoch, images and geom from here, so
// the struct stays where open_data filled it.
struct TrainData {
  ImageSet val_set;
  ImageSet shown;  // without a validation set: the first training images, for the grids
  std::vector<std::string> files;
  int epoch = 0;       // read by decode on the loader thread; set before start_epoch
  int64_t images = 0;  // N: images per epoch over all ranks, for the per-image random streams
  ImageGeom geom;
  bool preload = false, decode_on_compute_threads = false;
  std::unique_ptr<Loader> loader;
};

LoaderOptions loader_options(const Config& c, const Communicator& comm,
                             const std::vector<std::string>& files) {
  LoaderOptions lo;
  lo.seed = uint64_t(c.train.seed), lo.rank = comm.rank(), lo.world = comm.size();
  lo.batch = c.train.batch;
  lo.ring_batches = c.data.prefetch_batches;
  lo.threads = c.data.loader_threads;
  lo.max_images = c.data.max_images;
  lo.preload =
      c.data.preload == "on" ||
      (c.data.preload == "auto" && dataset_bytes(files, c.data.max_images) < (int64_t(2) << 30));
  // Consecutive batches from one window's few chunks are less independent than a whole-set
  // shuffle's: in memory nothing stops the latter; streamed, the window bounds the chunk cache.
  lo.window_chunks = c.data.shuffle_window > 0 ? c.data.shuffle_window : lo.preload ? 0 : 4;
  return lo;
}

// Everything read from HDF5 on this thread happens before the loader thread starts: serial HDF5
// is not thread-safe.
void open_data(const Config& c, const Communicator& comm, const LocalPlacement& place,
               TrainData& d) {
  if (!c.data.validation.empty())
    d.val_set = load_image_set(c.data.validation, 0, "data.validation");
  if (d.val_set.count == 0)
    d.shown = load_image_set(c.data.train, c.train.sample_grid, "data.train");
  d.files = expand_glob_for(c.data.train, "data.train");
  LoaderOptions lo = loader_options(c, comm, d.files);
  d.preload = lo.preload;
  d.decode_on_compute_threads = decode_on_compute(c.data.decode_on, place);
  if (d.decode_on_compute_threads) lo.decode_on_consumer = compute_parallel_for;
  const int64_t bin_seed = c.data.binarize == "dynamic" ? c.train.seed : -1;
  d.loader = std::make_unique<Loader>(
      d.files, lo,
      [&d, bin_seed](const uint8_t* const* images, const int64_t* index, int n, float* out) {
        thread_local std::vector<uint64_t> key;  // parts of a batch may decode concurrently
        key.resize(size_t(n));
        for (int b = 0; b < n; ++b)
          key[size_t(b)] = uint64_t(d.epoch) * uint64_t(d.images) + uint64_t(index[b]);
        decode_images(images, d.geom, key.data(), n, bin_seed, out);
      },
      batch_allocator(host_buffer_allocator(c.train.backend)));
  d.images = d.loader->info().count;
  d.geom = ImageGeom{d.loader->info().height, d.loader->info().width, d.loader->info().channels};
  const ImageGeom& v = d.val_set.geom;
  if (d.val_set.count > 0 &&
      (v.height != d.geom.height || v.width != d.geom.width || v.channels != d.geom.channels))
    throw std::runtime_error("data.validation: images are " + geom_text(v) +
                             " but data.train's are " + geom_text(d.geom));
}

// A run's state, shared by the steps below: what set-up made, and what the steps advance.
struct Run {
  const Config& c;
  const TrainOptions& o;
  Communicator& comm;
  Backend<float>& backend;
  Trainee& trainee;
  TrainData& data;
  BatchFeed& feed;
  Progress& progress;
  bool root = false;
  bool gan = false;
  int B = 0;                                     // images per rank per step
  std::unique_ptr<MetricsLog> log = nullptr;     // rank 0
  std::unique_ptr<Watchdog> watchdog = nullptr;  // several ranks and train.hang_timeout
  VaeStepArgs args;
  std::string run_id{};  // in every checkpoint and metrics record
  int64_t step = 0;      // optimizer steps taken, over all epochs
  int64_t skipped = 0;   // steps skipped for non-finite values (train.on_nonfinite: skip)
  int64_t consecutive_skipped = 0;
  Clock::time_point t_checkpoint = Clock::now();
  bool saved_at_step_end = false;       // the last step of an epoch already wrote its checkpoint
  bool preempted_at_epoch_end = false;  // exit once the epoch has ended (validation, report)
};

// Rank 0 prints, unless --quiet; the other ranks stay quiet.
template <class... A>
void say(const Run& run, const char* fmt, A... args) {
  if (run.root && !run.o.quiet) {
    std::printf(fmt, args...);
    std::fflush(stdout);
  }
}

// What changes how a resumed run continues is said even under --quiet, on stderr, by rank 0.
template <class... A>
void notice(const Run& run, const char* fmt, A... args) {
  if (!run.root) return;
  std::fprintf(stderr, "distvae: note: ");
  std::fprintf(stderr, fmt, args...);
  std::fflush(stderr);
}

void beat(Run& run) {
  if (run.watchdog) run.watchdog->beat();
}

// Where training starts: after the newest usable checkpoint with --resume, else at the beginning.
struct StartPoint {
  bool resumed = false;
  int epoch = 0;
  int64_t step = 0, skip = 0;  // steps already taken, in all and in the epoch
  std::string run_id;          // the resumed run's (empty for a checkpoint older than run ids)
};

// A checkpoint's rank count against this job's. Inside an epoch the images still to come depend
// on how the shard plan dealt the epoch's chunks to that many ranks, so a mid-epoch checkpoint
// continues only on the rank count that wrote it; at an epoch boundary any count may, and the
// change of the global batch is said.
void check_rank_count(const Run& run, const Checkpoint& ck, const std::string& path,
                      const StartPoint& s) {
  const auto it = ck.ints.find("world");
  const int now = run.comm.size();
  if (it == ck.ints.end() || it->second == now) return;
  const int then = int(it->second);
  if (s.skip > 0)
    throw std::runtime_error(
        path + " was written inside epoch " + std::to_string(s.epoch + 1) + " (after step " +
        std::to_string(s.skip) + " of it) by " + std::to_string(then) +
        " rank(s); which images that epoch has left depends on the rank count, so it continues "
        "only on " +
        std::to_string(then) + " rank(s): resume with " + std::to_string(then) +
        " rank(s) and --stop-after-epochs 1 to finish the epoch, then resume on " +
        std::to_string(now) + " from its end");
  notice(run,
         "resuming on %d rank(s) from a checkpoint written on %d: the global batch changes from "
         "%d to %d images (the learning rate is not rescaled)\n",
         now, then, run.B * then, run.B * now);
}

// --resume: the newest checkpoint that reads back. A damaged file (truncated, a checksum that
// does not match) falls back to an older one; a file that cannot be read at all, or a checkpoint
// of another architecture, is the user's to fix: stop, changing nothing.
StartPoint resume(Run& run) {
  for (const std::string& p : list_checkpoints(run.o.run_dir)) {
    Checkpoint ck;
    try {
      ck = read_checkpoint(p);
    } catch (const CheckpointCorrupt& e) {
      say(run, "skipping damaged checkpoint %s: %s\n", p.c_str(), e.what());
      continue;
    } catch (const CheckpointUnreadable& e) {
      throw std::runtime_error(std::string(e.what()) +
                               "; not passed over, since a resume could use it: make it "
                               "readable, or move it out of checkpoints/ to resume from an "
                               "older one");
    }
    load_networks(ck, p, run.backend, run.trainee.checkpoint_states());
    StartPoint s;
    s.resumed = true;
    s.epoch = int(ck.ints.at("epoch"));
    s.step = ck.ints.at("step");
    const auto within = ck.ints.find("step_in_epoch");
    s.skip = within == ck.ints.end() ? 0 : within->second;
    const auto id = ck.strings.find("run_id");
    if (id != ck.strings.end()) s.run_id = id->second;
    check_rank_count(run, ck, p, s);
    say(run, "resuming from %s (epoch %d, step %lld of it)\n", p.c_str(), s.epoch + 1,
        (long long)s.skip);
    return s;
  }
  return {};
}

// What an earlier run left in the run directory decides what this one may do there: continue
// it (--resume), move it aside (--overwrite), or stop. Nothing is ever deleted or mixed.
void claim_run_dir(Run& run, const RunDirContents& before) {
  const std::string& dir = run.o.run_dir;
  if (!run.root || run.o.resume || !before.holds_run()) return;
  if (!run.o.overwrite)
    throw std::runtime_error(dir + " already holds a run (" + before.describe() +
                             "): continue it with --resume, start a new run there with "
                             "--overwrite (the earlier files are moved into " +
                             dir + "/replaced-<time>/, not deleted), or choose another --run-dir");
  say(run, "--overwrite: moved the earlier run's files to %s\n", move_run_aside(dir).c_str());
  prepare_run_dir(dir);  // its checkpoints/ went aside with the rest
}

// Resuming after step S: the records a killed run wrote after its checkpoint would be written
// again, so they are set aside (never dropped), and the log says so.
void set_aside_later_records(Run& run, const StartPoint& start) {
  const std::string metrics = run.o.run_dir + "/metrics.jsonl";
  const std::string aside =
      run.o.run_dir + "/metrics.after-step-" + std::to_string(start.step) + ".jsonl";
  const int64_t n = move_records_after(metrics, start.step, start.epoch, aside);
  if (n > 0)
    notice(run, "metrics.jsonl: %lld record(s) written after that checkpoint moved to %s\n",
           (long long)n, aside.c_str());
}

// With several ranks, a rank that stops (SIGSTOP, stuck I/O) must not leave the others waiting
// in a collective forever: heartbeats in the run directory, abort after train.hang_timeout.
std::unique_ptr<Watchdog> start_watchdog(const Config& c, const std::string& run_dir,
                                         Communicator& comm) {
  if (!(comm.size() > 1 && c.train.hang_timeout > 0)) return nullptr;
  return std::make_unique<Watchdog>(run_dir + "/heartbeat", comm.rank(), comm.size(),
                                    c.train.hang_timeout, [&comm](const std::string& msg) {
                                      std::fprintf(stderr, "distvae: error: %s\n", msg.c_str());
                                      std::fflush(stderr);
                                      comm.abort(kExitHung);
                                    });
}

// The run directory (made and locked by rank 0 in train()): what an earlier run left, the
// checkpoint to resume from, the resolved config and the metrics log (rank 0), and the watchdog's
// heartbeats there.
StartPoint open_run_dir(Run& run) {
  const std::string& dir = run.o.run_dir;
  const RunDirContents before = run.root ? inspect_run_dir(dir) : RunDirContents{};
  claim_run_dir(run, before);
  run.comm.barrier();
  const StartPoint start = run.o.resume ? resume(run) : StartPoint{};
  if (run.o.resume && !start.resumed) {
    if (before.holds_run())
      throw std::runtime_error("--resume: no usable checkpoint in " + dir +
                               ", but it holds an earlier run (" + before.describe() +
                               "); start a new run there with --overwrite (the earlier files are "
                               "moved aside, not deleted), or choose another --run-dir");
    say(run, "--resume: no checkpoint in %s yet; starting fresh\n", dir.c_str());
  }
  run.run_id = start.run_id.empty() ? new_run_id() : start.run_id;
  if (run.root) {
    if (start.resumed) set_aside_later_records(run, start);
    std::ofstream(dir + "/config.yaml") << dump_config(run.c);
    run.log = std::make_unique<MetricsLog>(dir + "/metrics.jsonl", run.run_id);
  }
  run.watchdog = start_watchdog(run.c, dir, run.comm);
  return start;
}

std::string shuffle_text(const Loader& loader) {
  const int64_t chunks = int64_t(all_chunks(loader.info()).size());
  if (loader.window_chunks() >= chunks) return "each rank's images shuffled whole";
  return "shuffled in windows of " + std::to_string(loader.window_chunks()) + " chunks";
}

void print_start(const Run& run, const LocalPlacement& place) {
  const TrainData& d = run.data;
  const ImageGeom& g = d.geom;
  const int world = run.comm.size();
  const std::string be = run.backend.name();
  say(run,
      "distvae train: %lld images %lldx%lldx%lld from %zu file(s) (%s, %s, decoded on the %s), "
      "batch %d x %d rank(s) = %d, backend %s, %d thread(s) per rank (%s)\n",
      (long long)d.images, (long long)g.height, (long long)g.width, (long long)g.channels,
      d.files.size(), d.preload ? "preloaded" : "streamed", shuffle_text(*d.loader).c_str(),
      d.decode_on_compute_threads ? "compute threads" : "loader thread", run.B, world,
      run.B * world, (be == "dnnl" ? "dnnl, ISA " + dnnl_cpu_isa() : be).c_str(), place.threads,
      place.threads_from.c_str());
  std::string params_text;
  for (const TrainedNet& n : run.trainee.all_nets())
    params_text += n.net->name() + " " + std::to_string(n.net->params().size()) + " in " +
                   std::to_string(n.sync->num_buckets()) + " bucket(s), ";
  const bool overlap = run.trainee.overlap();
  say(run, "model %s; parameters: %soverlap %s%s\n", run.c.model.family.c_str(),
      params_text.c_str(), overlap ? "on" : "off",
      run.c.train.overlap != "auto" ? ""
      : overlap                     ? " (auto: a spare CPU for the communication thread)"
                                    : " (auto: no spare CPU for the communication thread)");
  if (world > 1) say(run, "gradient all-reduce: %s\n", run.trainee.reduction().c_str());
}

// Every trained network's parameters are finite (the same answer on every rank: the replicas
// hold the same values).
bool parameters_finite(Run& run) {
  for (const TrainedNet& n : run.trainee.all_nets()) {
    const ParamStore<float>& ps = n.net->params();
    if (!run.backend.all_finite(ps.values(), ps.size())) return false;
  }
  return true;
}

// Called on every rank, rank 0 writes. Every rank holds the same parameters, but the optimizer's
// moments may be split over the ranks, so they are gathered first. epochs_done counts whole
// epochs; a preempted run also records how far into the next one it got.
void save_checkpoint(Run& run, int epochs_done, int64_t step_in_epoch) {
  run.trainee.gather_optimizer_state();
  if (!run.root) return;
  const Config& c = run.c;
  const ImageGeom& g = run.data.geom;
  const std::string path = checkpoint_path(run.o.run_dir, epochs_done, step_in_epoch);
  // A checkpoint of non-finite parameters could only be resumed into the same dead end.
  if (!parameters_finite(run))
    throw std::runtime_error("not writing " + path + ": the parameters are non-finite");
  Checkpoint ck;
  save_networks(ck, run.backend, run.trainee.checkpoint_states());
  ck.ints["epoch"] = epochs_done;
  ck.ints["step_in_epoch"] = step_in_epoch;
  ck.ints["step"] = run.step;
  ck.ints["world"] = run.comm.size();
  ck.strings["run_id"] = run.run_id;
  ck.strings["config"] = dump_config(c);
  ck.strings["model"] = model_description(run.trainee.model(), c, g);
  ck.ints["image.height"] = g.height, ck.ints["image.width"] = g.width;
  ck.ints["image.channels"] = g.channels;
  const std::vector<std::string> kept = list_checkpoints(run.o.run_dir);
  try {
    write_checkpoint(path, ck);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(e.what()) + "; " +
                             (kept.empty()
                                  ? "there is no earlier checkpoint"
                                  : "the previous checkpoint " + kept.front() + " is intact"));
  }
  prune_checkpoints(run.o.run_dir, c.train.keep_checkpoints);
}

// Where a step is: its epoch, its index in the epoch, and the epoch's number of steps.
struct StepAt {
  int epoch = 0;
  int64_t s = 0, steps_per_epoch = 0;
  double epochs_done() const { return epoch + double(s) / double(steps_per_epoch); }
  bool epoch_end() const { return s + 1 == steps_per_epoch; }
};

// What a metrics record reports, summed since the last one.
struct RecordSums {
  // elbo, log p(x|z), kl, prior cost, images (VAE families), or generator loss, proximal term
  // (gan); then discriminator loss, accuracy, steps.
  double acc[8] = {};
  double exposed = 0;  // seconds blocked on gradient all-reduce
  double kl_dim_min = std::numeric_limits<double>::quiet_NaN();  // free bits: lowest dim KL
  double data_wait = 0, data_decode = 0;  // the loader's counters when the sums started
  int64_t steps = 0;
  Clock::time_point t = Clock::now();
};

RecordSums new_sums(const Loader& loader) {
  RecordSums s;
  s.data_wait = loader.wait_seconds(), s.data_decode = loader.decode_seconds();
  return s;
}

// A good step's figures into the sums and the progress line.
void add_step(Run& run, RecordSums& sums, const StepResult& r) {
  const VaeStats& st = r.vae;
  const int B = run.B;
  double* acc = sums.acc;
  if (run.gan) {
    acc[0] += r.gen.loss * B, acc[1] += r.gen.proximal * B;
    run.progress.step(r.gen.loss * B, r.disc.loss * B, B);
  } else {
    acc[0] += st.elbo, acc[1] += st.log_px_given_z, acc[2] += st.kl, acc[3] += st.prior_cost;
    run.progress.step(st.elbo, st.kl, st.images);
  }
  acc[4] += B;
  acc[5] += r.disc.loss, acc[6] += r.disc.accuracy, acc[7] += 1;
}

// The record's fields from the sums, already summed over the ranks.
std::vector<std::pair<std::string, double>> metrics_record(const Run& run, const RecordSums& sums,
                                                           const StepAt& at) {
  const Config& c = run.c;
  Model& model = run.trainee.model();
  const double* acc = sums.acc;
  const double n = acc[4];  // 0 when every step was skipped: the means are then NaN (null)
  const double epochs_done = at.epochs_done();
  std::vector<std::pair<std::string, double>> rec = {
      {"step", double(run.step + 1)}, {"epoch", epochs_done + 1.0 / at.steps_per_epoch}};
  if (run.gan) {
    rec.push_back({"gen_loss", acc[0] / n});
    if (c.objective.proximal > 0) rec.push_back({"proximal", acc[1] / n});
  } else {
    rec.insert(rec.end(), {{"elbo", acc[0] / n},
                           {"log_px_given_z", acc[1] / n},
                           {"kl", acc[2] / n},
                           {"beta", run.args.beta}});
    // implicit prior: E_q[T(z)] (the prior cost is -T); aae: E_q softplus(T(z))
    if (model.vae->prior_kind() == PriorKind::implicit) rec.push_back({"prior_t", -acc[3] / n});
    if (model.vae->prior_kind() == PriorKind::adversarial)
      rec.push_back({"prior_softplus_t", acc[3] / n});
  }
  if (model.discriminator())  // means over steps and ranks
    rec.insert(rec.end(), {{"disc_loss", acc[5] / acc[7]}, {"disc_accuracy", acc[6] / acc[7]}});
  const Loader& loader = *run.data.loader;
  const double steps = double(sums.steps);
  rec.insert(rec.end(),
             {{"lr", scheduled_lr(optimizer_config(c.optim), epochs_done / c.train.epochs)},
              {"skipped_steps", double(run.skipped)},
              {"images_per_s", n / seconds_since(sums.t)},
              {"comm_exposed_ms", 1e3 * sums.exposed / steps},
              {"data_wait_ms", 1e3 * (loader.wait_seconds() - sums.data_wait) / steps},
              {"data_decode_ms", 1e3 * (loader.decode_seconds() - sums.data_decode) / steps}});
  if (!std::isnan(sums.kl_dim_min)) rec.push_back({"kl_dim_min", sums.kl_dim_min});
  return rec;
}

// Sums the record over the ranks, rank 0 writes it, and the sums start again.
void write_record(Run& run, RecordSums& sums, const StepAt& at) {
  run.comm.allreduce(sums.acc, 8, ReduceOp::sum);
  const std::vector<std::pair<std::string, double>> rec = metrics_record(run, sums, at);
  if (run.log) run.log->write(rec);
  sums = new_sums(*run.data.loader);
}

// Stops the run with the non-finite exit code, writing no checkpoint of the broken model: rank 0
// says WHY and names the last good checkpoint.
int stop_nonfinite(const Run& run, const std::string& why) {
  if (run.root) {
    const std::vector<std::string> kept = list_checkpoints(run.o.run_dir);
    std::fprintf(stderr, "distvae: error: %s; last good checkpoint: %s\n", why.c_str(),
                 kept.empty() ? "none" : kept.front().c_str());
  }
  return kExitNonFinite;
}

// A run that skipping cannot save (train.on_nonfinite: skip).
int stop_dead_run(const Run& run, const std::string& why) {
  return stop_nonfinite(run, why +
                                 ": an update has broken the model and skipping steps cannot "
                                 "recover it; stopping without a checkpoint (lower optim.lr or "
                                 "set optim.grad_clip)");
}

// train.on_nonfinite: skip -- this step changes nothing. Skipping is for the odd bad batch: when
// the parameters themselves are non-finite, or every step of a stretch (an epoch, at most 100
// steps) was skipped, an earlier update has broken the model and every later step would be
// skipped too, so the run stops as with on_nonfinite: stop, writing no checkpoint.
std::optional<int> skip_for_nonfinite(Run& run, const std::string& bad, const StepAt& at) {
  if (!parameters_finite(run))
    return stop_dead_run(run, "step " + std::to_string(run.step + 1) + ": non-finite " + bad +
                                  ", and the parameters themselves are non-finite");
  const int64_t stretch = std::min<int64_t>(100, at.steps_per_epoch);
  if (++run.consecutive_skipped >= stretch)
    return stop_dead_run(run, "the last " + std::to_string(run.consecutive_skipped) +
                                  " steps were all non-finite (step " +
                                  std::to_string(run.step + 1) + ": " + bad + ")");
  ++run.skipped;
  if (run.skipped <= 3 || run.skipped % 100 == 0)
    say(run, "step %lld: non-finite %s; step skipped (%lld so far)\n", (long long)(run.step + 1),
        bad.c_str(), (long long)run.skipped);
  return std::nullopt;
}

// Preemption's exit, once the checkpoint after step STEPS of EPOCH (0-based) is written.
int exit_preempted(Run& run, int epoch, int64_t steps) {
  run.comm.barrier();
  const bool requeued = run.root && run.c.train.requeue && request_slurm_requeue();
  say(run,
      "preempted: checkpoint written at epoch %d, step %lld%s; exiting with code %d "
      "(continue with --resume)\n",
      epoch + 1, (long long)steps, requeued ? ", job requeued" : "", kExitPreempted);
  return kExitPreempted;
}

bool timed_checkpoint_due(const Run& run) {
  const double minutes = run.c.train.checkpoint_minutes;
  return minutes > 0 && seconds_since(run.t_checkpoint) >= 60.0 * minutes;
}

// After a step: the checkpoint a timer, a step count or preemption asks for, and preemption's
// exit (a signal on any rank stops all of them at this same step).
std::optional<int> checkpoint_or_preempt(Run& run, const StepAgreement& f, const StepAt& at) {
  const Config& c = run.c;
  const bool timed = f.checkpoint_due || (c.train.checkpoint_every_steps > 0 &&
                                          run.step % c.train.checkpoint_every_steps == 0);
  run.saved_at_step_end = timed || f.preempt;
  if (run.saved_at_step_end) {
    save_checkpoint(run, at.epoch_end() ? at.epoch + 1 : at.epoch, at.epoch_end() ? 0 : at.s + 1);
    run.t_checkpoint = Clock::now();
  }
  if (!f.preempt) return std::nullopt;
  // At an epoch's last step the epoch still ends (validation ELBO, grids, report) before the exit:
  // the resumed run starts at the next epoch and would never do them.
  if (at.epoch_end()) {
    run.preempted_at_epoch_end = true;
    return std::nullopt;
  }
  return exit_preempted(run, at.epoch, at.s + 1);
}

// One step: the batch, forward and backward, the end-of-step agreement, then the update or the
// skip, the metrics record when one is due, and the step's checkpoint. Returns the exit code when
// the run stops here (non-finite values under train.on_nonfinite: stop, or preemption).
std::optional<int> train_step(Run& run, RecordSums& sums, const StepAt& at) {
  const Config& c = run.c;
  const BatchFeed::Step in = run.feed.next();
  run.args.noise_keys = in.keys;
  const double epochs_done = at.epochs_done();
  run.args.beta = kl_warmup_beta(c.objective.beta, c.objective.warmup_epochs, epochs_done);
  const StepResult r =
      run.trainee.step(in.x, run.B, in.keys, run.args, epochs_done / c.train.epochs);
  sums.exposed += run.trainee.exposed_seconds();
  const StepAgreement f =
      agree_on_step(r, run.trainee, run.backend, run.comm, timed_checkpoint_due(run));
  if (f.nonfinite.empty()) {
    run.consecutive_skipped = 0;
    run.trainee.update_main(epochs_done / c.train.epochs);
    add_step(run, sums, r);
  } else if (c.train.on_nonfinite == "stop") {
    return stop_nonfinite(run, "step " + std::to_string(run.step + 1) + ": non-finite " +
                                   f.nonfinite +
                                   "; stopping without updating the parameters "
                                   "(train.on_nonfinite: stop)");
  } else if (const std::optional<int> code = skip_for_nonfinite(run, f.nonfinite, at)) {
    return code;
  }
  ++sums.steps;
  const double kl_min = r.vae.kl_dim_min;
  if (!std::isnan(kl_min))
    sums.kl_dim_min = std::isnan(sums.kl_dim_min) ? kl_min : std::min(sums.kl_dim_min, kl_min);
  if ((run.step + 1) % c.train.log_every == 0 || at.epoch_end()) write_record(run, sums, at);
  ++run.step;
  beat(run);
  return checkpoint_or_preempt(run, f, at);
}

// The end of an epoch: the validation ELBO and the sample grids (rank 0), the epoch's checkpoint
// unless its last step wrote one, and the report.
std::optional<int> finish_epoch(Run& run, int epoch, double epoch_secs, bool last) {
  const Config& c = run.c;
  int dead = 0;  // rank 0's validation ELBO is non-finite: the model no longer predicts
  if (run.root) {
    const TrainData& d = run.data;
    Model& model = run.trainee.model();
    if (d.val_set.count > 0 && model.vae) {
      const double ve = mean_elbo(*model.vae, d.val_set, c, run.B, [&run] { beat(run); });
      run.log->write(
          {{"epoch", double(epoch + 1)}, {"val_elbo", ve}, {"epoch_seconds", epoch_secs}});
      say(run, "epoch %d done in %.1f s  validation elbo %.2f nats\n", epoch + 1, epoch_secs, ve);
      dead = std::isfinite(ve) ? 0 : 1;
    } else {
      say(run, "epoch %d done in %.1f s\n", epoch + 1, epoch_secs);
    }
    const auto t0 = std::chrono::steady_clock::now();
    write_grids(model, d.val_set.count > 0 ? d.val_set : d.shown, c, run.o.run_dir);
    if (model.vae && model.vae->decoder().autoregressive())  // H*W passes per grid
      say(run, "sample grids drawn pixel by pixel in %.1f s\n",
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  run.comm.broadcast(&dead, sizeof dead, 0);
  if (dead)
    return stop_dead_run(
        run, "the validation ELBO of epoch " + std::to_string(epoch + 1) + " is non-finite");
  if (((epoch + 1) % c.train.checkpoint_every == 0 || last) && !run.saved_at_step_end)
    save_checkpoint(run, epoch + 1, 0);
  if (run.root) write_report(run.o.run_dir);
  run.comm.barrier();
  return std::nullopt;
}

// One epoch's steps, from the resumed step in the first, then its end. Returns the exit code when
// the run stops inside it.
std::optional<int> train_epoch(Run& run, int epoch, const StartPoint& start, bool last) {
  run.data.epoch = epoch;
  // Resuming inside an epoch: the plan is deterministic, so the batches already trained on are
  // drawn again and passed over.
  const int64_t first_step = epoch == start.epoch ? start.skip : 0;
  // The same on every rank (shard plan).
  const int64_t steps_per_epoch = run.feed.start_epoch(epoch, first_step);
  if (epoch == start.epoch) run.step = start.step;
  const auto t_epoch = Clock::now();
  RecordSums sums = new_sums(*run.data.loader);
  run.progress.start_epoch(epoch, steps_per_epoch, first_step);
  for (int64_t s = first_step; s < steps_per_epoch; ++s)
    if (const std::optional<int> code = train_step(run, sums, StepAt{epoch, s, steps_per_epoch}))
      return code;
  run.progress.end_epoch();
  if (const std::optional<int> code = finish_epoch(run, epoch, seconds_since(t_epoch), last))
    return code;
  // Preempted at the run's very last step, the run is complete: it ends as usual.
  if (run.preempted_at_epoch_end && !last) return exit_preempted(run, epoch, steps_per_epoch);
  return std::nullopt;
}

}  // namespace

int train(const Config& c, const TrainOptions& o, Communicator& launch_comm) {
  // A GPU run reduces its device buffers through NCCL, bootstrapped over launch_comm (which keeps
  // carrying the host-memory collectives); creating it also picks this rank's GPU, so it comes
  // before the backend.
  const std::unique_ptr<Communicator> gpu_comm =
      c.train.backend == "cuda" ? make_nccl_communicator(launch_comm) : nullptr;
  Communicator& comm = gpu_comm ? *gpu_comm : launch_comm;
  // First of all, so that a second run on the same directory stops at once: one run at a time.
  std::unique_ptr<RunDirLock> lock;
  if (comm.rank() == 0) {
    prepare_run_dir(o.run_dir);
    lock = std::make_unique<RunDirLock>(o.run_dir);
  }
  const LocalPlacement place = discover_placement(c.train.threads);
  omp_set_num_threads(place.threads);

  TrainData data;
  open_data(c, comm, place, data);
  check_same_setup(comm, dump_config(c), data.files);
  auto backend = make_backend(c.train.backend);
  Trainee trainee(c, data.geom, *backend, comm, c.train.batch);
  BatchFeed feed(*backend, *data.loader, c.train.batch, size_t(data.geom.pixels()), data.images);
  const bool gan = trainee.model().gan != nullptr;
  Progress progress(comm.rank() == 0 && !o.quiet, o.log_every_seconds, c.train.epochs, comm.size(),
                    stdout, gan ? "g_loss" : "elbo", gan ? "d_loss" : "kl");
  Run run{.c = c,
          .o = o,
          .comm = comm,
          .backend = *backend,
          .trainee = trainee,
          .data = data,
          .feed = feed,
          .progress = progress,
          .root = comm.rank() == 0,
          .gan = gan,
          .B = c.train.batch,
          .args = step_args(c, comm)};

  const StartPoint start = open_run_dir(run);
  print_start(run, place);
  run.t_checkpoint = Clock::now();
  arm_preemption(run.root);
  const int end_epoch = o.stop_after_epochs > 0
                            ? std::min(c.train.epochs, start.epoch + o.stop_after_epochs)
                            : c.train.epochs;
  for (int epoch = start.epoch; epoch < end_epoch; ++epoch)
    if (const std::optional<int> code = train_epoch(run, epoch, start, epoch + 1 == end_epoch))
      return *code;
  say(run, "run directory: %s (samples.png%s, metrics.jsonl, checkpoints/)\n", o.run_dir.c_str(),
      gan ? "" : ", recon.png");
  return 0;
}

}  // namespace distvae
