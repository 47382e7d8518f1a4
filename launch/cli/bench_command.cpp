// `distvae bench`: warm-up steps, then N timed training steps of a config's model on synthetic
// batches through Trainee (the code `distvae train` runs), with the step split into phases, the
// achieved GFLOP/s, peak memory and a oneDNN matmul reference. Rank 0 prints; every rank computes
// and all-reduces, so under mpirun the figures include the gradient all-reduce.
#include "launch/cli/bench_command.h"

#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/backends/dnnl.h"
#include "core/backends/isa_clones.h"
#include "core/rng.h"
#include "dist/nccl_communicator.h"
#include "dist/world.h"
#include "io/data/image_set.h"
#include "launch/cli/bench_reference.h"
#include "launch/cli/mpi_job.h"
#include "launch/cli/version.h"
#include "launch/config/config.h"
#include "launch/eval/evaluate.h"
#include "launch/train/model_setup.h"
#include "launch/train/step_agreement.h"
#include "launch/train/train_step.h"

namespace distvae {

namespace {

struct BenchOptions {
  std::string config;
  std::vector<std::string> sets;  // --set key=value overrides, as for train
  int steps = 100;                // timed training steps
  int warmup = 20;                // untimed steps first (primitive creation, caches, page faults)
  int threads = 0;                // compute threads per rank (0: train.threads, then the launcher)
  std::string image;              // "HxWxC"; empty: inferred from the model's output shape
  int iw = 0;                     // > 0: time the importance-weighted evaluation, K = iw
  int64_t images = 1000;          // images for --iw
  bool ops = false;               // print each operation of the GEMM/conv reference
};

// The reference's operations one per line: what, calls per step (or per image), time per call,
// GFLOP/s alone.
void print_ops(const HeavyReference& r, const char* per) {
  std::printf("%-62s %8s %10s %9s\n", "operation (M x K x N)", per, "ms/call", "GFLOP/s");
  for (const HeavyOp& op : r.each)
    std::printf("%-62s %8.3g %10.4f %9.1f\n", op.what.c_str(), op.calls, op.seconds * 1e3,
                op.flops / op.seconds * 1e-9);
}

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// "28x28x1" -> (H, W, C); throws naming the flag.
ImageGeom parse_image(const std::string& s) {
  long long h = 0, w = 0, c = 0;
  int used = -1;
  if (std::sscanf(s.c_str(), "%lldx%lldx%lld%n", &h, &w, &c, &used) != 3 || used != int(s.size()) ||
      h < 1 || w < 1 || c < 1)
    throw std::runtime_error(
        "--image: expected HxWxC with positive integers (e.g. 28x28x1), got '" + s + "'");
  return ImageGeom{h, w, c};
}

// The config does not name an image size (it comes from the data files), so bench reads it off
// the model: the decoder's (or generator's) output is the image. A flat output of n values is
// taken as a square grey image, else a square RGB one; for MLPs only n matters anyway. An
// autoregressive decoder's image has the height and width of the feature map before its
// autoregressive layer, and the channels of its last layer's output.
ImageGeom infer_image(const Config& c, std::string* from) {
  const bool vae = is_vae_family(c.model);
  const char* net = vae ? "decoder" : "generator";
  const std::vector<LayerSpec>& specs = vae ? c.model.decoder : c.model.generator;
  const auto ar = find_autoregressive(specs);
  Shape image;
  if (ar != specs.end()) {
    const std::vector<Layer> map =
        plan_layers(net, Shape{c.model.latent}, std::vector<LayerSpec>(specs.begin(), ar));
    const Shape f = map.empty() ? Shape{c.model.latent} : map.back().out;
    const auto last =
        std::find_if(specs.rbegin(), specs.rend(), [](const LayerSpec& s) { return s.out > 0; });
    if (f.rank == 3 && last != specs.rend()) image = Shape{last->out, f[1], f[2]};
  }
  const std::vector<Layer> layers = plan_layers(net, Shape{c.model.latent}, specs, image);
  Shape out = layers.empty() ? Shape{c.model.latent} : layers.back().out;
  const int64_t per_pixel = vae && c.model.gaussian_variance == "learned" ? 2 : 1;  // mean, logvar
  *from = std::string("from the ") + net + "'s output " + out.str();
  if (out.rank == 3 && out[0] % per_pixel == 0)
    return ImageGeom{out[1], out[2], out[0] / per_pixel};
  const int64_t n = out.numel() / per_pixel;
  for (int64_t ch : {1, 3}) {
    const auto s = int64_t(std::llround(std::sqrt(double(n / ch))));
    if (n % ch == 0 && s * s * ch == n) return ImageGeom{s, s, ch};
  }
  throw std::runtime_error(std::string("cannot infer the image shape from the ") + net + "'s " +
                           std::to_string(n) + " outputs per image; pass --image HxWxC");
}

// The latent discriminator T's n_disc updates of a step: both classes in one pass of 2B rows, or
// a pass each when T has batch norms.
NetUse disc_updates_use(const Config& c, Model& m, int B) {
  const Network<float>& t = m.latent_disc->net();
  const double n = c.objective.n_disc;
  return t.has_batchnorm() ? NetUse{&t, B, 2 * n, true, false, true}
                           : NetUse{&t, 2 * B, n, true, false, true};
}

// The heavy operations of one training step, network by network (see bench_reference.h): the
// VAE families'. Empty for the GAN, whose discriminator passes depend on its batch norms.
std::vector<NetUse> training_uses(const Config& c, Model& m, int B) {
  std::vector<NetUse> u;
  if (!m.vae) return u;
  Vae<float>& vae = *m.vae;
  const int S = vae.spec().samples;
  u.push_back({&vae.encoder(), B, 1, true, false, true});
  u.push_back({&vae.decoder(), B, double(S), true, true, true});  // dz feeds the encoder
  if (m.latent_disc) {
    u.push_back({&vae.encoder(), B, 1, false});  // q(z|x) for T's updates
    u.push_back(disc_updates_use(c, m, B));
    u.push_back(
        {&m.latent_disc->net(), B, double(S), true, true, false});  // T(z), dT/dz in the loss
  }
  return u;
}

// The importance-weighted evaluation's heavy operations per image: the ELBO pass over batches of
// eval.iw_batch images, then one encoding and K decodings in passes of min(K, iw_batch) rows.
std::vector<NetUse> iw_uses(const Config& c, Model& m, int K) {
  Vae<float>& vae = *m.vae;
  const int batch = c.eval.iw_batch, C = std::min(K, batch);
  const double passes = double((K + C - 1) / C);
  std::vector<NetUse> u{{&vae.encoder(), batch, 1.0 / batch, false},
                        {&vae.decoder(), batch, 1.0 / batch, false},
                        {&vae.encoder(), 1, 1, false},
                        {&vae.decoder(), C, passes, false}};
  if (m.latent_disc) {
    u.push_back({&m.latent_disc->net(), batch, 1.0 / batch, false});
    u.push_back({&m.latent_disc->net(), C, passes, false});
  }
  return u;
}

// Per-step times summed over the timed steps, in the order printed.
enum Phase {
  kInput,
  kDisc,
  kDiscExposed,
  kForwardBackward,
  kExposed,
  kChecks,
  kOptimizer,
  kPhases
};

// The importance-weighted evaluation of `distvae eval` (likelihood_figures: ELBO, then K samples
// per image) on `images` synthetic images, split over the ranks as eval splits them; rank 0 prints.
int bench_iw(const BenchOptions& o, const Config& c, Model& model, Backend<float>& be,
             const ImageGeom& g, Communicator& comm, const LocalPlacement& place) {
  if (!model.vae)
    throw std::runtime_error("bench --iw: the config's model is a " + c.model.family +
                             "; the importance-weighted evaluation needs a VAE");
  ImageSet set;
  set.geom = g;
  set.count = o.images;
  std::vector<float> u(size_t(o.images) * size_t(g.pixels()));
  uniform_fill(uint64_t(c.train.seed), stream_id(rng_purpose::test, 999), 0, u.size(), u.data());
  set.pixels.resize(u.size());
  for (size_t i = 0; i < u.size(); ++i) set.pixels[i] = uint8_t(255.0f * u[i]);
  comm.barrier();
  const auto t0 = Clock::now();
  const LikelihoodFigures f =
      likelihood_figures(*model.vae, set, c, c.eval.iw_batch, o.iw, comm, false);
  comm.barrier();
  const double secs = seconds(t0, Clock::now());
  // The GEMMs' seconds alone for this rank's share of the images (every rank at once).
  const HeavyReference ref = heavy_reference(be, iw_uses(c, model, o.iw));
  const double images_per_rank = double(o.images) / comm.size();
  if (comm.rank() != 0) return 0;
  std::printf(
      "distvae bench %s --iw %d: %lld synthetic images %lldx%lldx%lld, %d rank(s) x %d "
      "thread(s), samples in passes of eval.iw_batch = %d\n",
      o.config.c_str(), o.iw, (long long)o.images, (long long)g.height, (long long)g.width,
      (long long)g.channels, comm.size(), place.threads, c.eval.iw_batch);
  std::printf("seconds:              %.3f  (iw bound %.2f nats per image, untrained model)\n", secs,
              f.iw);
  std::printf("images/s:             %.2f\n", double(o.images) / secs);
  std::printf(
      "GEMM reference:       %.1f GFLOP/s per rank  (%d distinct GEMMs of the ELBO pass, one "
      "encoding and %d decodings per image, each timed alone: %.3f ms per image)\n",
      ref.flops / ref.seconds * 1e-9, int(ref.each.size()), o.iw, ref.seconds * 1e3);
  std::printf("evaluation at:        %.1f %% of it  (those GEMMs alone / the evaluation)\n",
              100.0 * ref.seconds * images_per_rank / secs);
  if (o.ops) print_ops(ref, "/image");
  std::printf("result: iw_images_per_s=%.3f seconds=%.3f of_reference=%.1f\n",
              double(o.images) / secs, secs, 100.0 * ref.seconds * images_per_rank / secs);
  return 0;
}

// Synthetic images, a few distinct batches cycled: {0, 1} pixels where the config binarizes (what
// the model sees in training), intensities in (0, 1) otherwise. Deterministic per rank.
constexpr int kBatches = 4;

std::vector<std::vector<float>> synthetic_batches(const Config& c, int rank, size_t floats) {
  std::vector<std::vector<float>> host(kBatches, std::vector<float>(floats));
  for (int k = 0; k < kBatches; ++k) {
    std::vector<float>& h = host[size_t(k)];
    uniform_fill(uint64_t(c.train.seed), stream_id(rng_purpose::test, uint64_t(rank) * 64 + k), 0,
                 h.size(), h.data());
    if (c.data.binarize == "dynamic")
      for (float& v : h) v = v < 0.5f ? 0.0f : 1.0f;
  }
  return host;
}

// The timed steps: seconds per phase (the mean over ranks of their sums over the steps), the
// slowest rank's wall time, and this rank's count of steps that skipped the update.
struct StepTimes {
  double phase[kPhases] = {};
  double elapsed = 0;
  int skipped = 0;
};

// o.warmup untimed steps, then o.steps timed ones, each as the trainer takes it: the step, the
// end-of-step agreement, and the update when every rank found the step good.
StepTimes time_steps(const BenchOptions& o, const Config& c, Trainee& trainee, Backend<float>& be,
                     Communicator& comm, size_t D) {
  const int B = c.train.batch, world = comm.size();
  const std::vector<std::vector<float>> host = synthetic_batches(c, comm.rank(), size_t(B) * D);
  float* x_dev = be.alloc(size_t(B) * D);
  std::vector<uint64_t> key(static_cast<size_t>(B));
  VaeStepArgs args = step_args(c, comm);
  args.beta = c.objective.beta;  // after KL warm-up (beta does not change the cost)
  StepTimes t;
  auto run_step = [&](int64_t s, bool timed) {
    // Keys as the trainer's (epoch * N + image index) for one long epoch: every image use distinct.
    for (int b = 0; b < B; ++b)
      key[size_t(b)] = uint64_t(s) * uint64_t(B) * uint64_t(world) + uint64_t(comm.rank()) * B + b;
    const auto t0 = Clock::now();
    be.to_device(host[size_t(s % kBatches)].data(), x_dev, size_t(B) * D);
    const auto t1 = Clock::now();
    const StepResult r = trainee.step(x_dev, B, key.data(), args, 0.0);
    const auto t2 = Clock::now();
    // The trainer's end-of-step agreement: the non-finite scans of the loss terms and gradients
    // and the flag all-reduce (a few doubles: the latency is what costs). No timed checkpoints.
    const bool good = agree_on_step(r, trainee, be, comm, false).nonfinite.empty();
    const auto t3 = Clock::now();
    if (good) trainee.update_main(0.0);
    const auto t4 = Clock::now();
    if (!timed) return;
    t.skipped += good ? 0 : 1;
    const double main_exposed = trainee.exposed_seconds() - trainee.disc_exposed_seconds();
    t.phase[kInput] += seconds(t0, t1);
    t.phase[kDisc] += trainee.disc_seconds();
    t.phase[kDiscExposed] += trainee.disc_exposed_seconds();
    t.phase[kForwardBackward] += seconds(t1, t2) - trainee.disc_seconds() - main_exposed;
    t.phase[kExposed] += main_exposed;
    t.phase[kChecks] += seconds(t2, t3);
    t.phase[kOptimizer] += seconds(t3, t4);
  };
  for (int s = 0; s < o.warmup; ++s) run_step(s, false);
  comm.barrier();
  const auto t_start = Clock::now();
  for (int s = 0; s < o.steps; ++s) run_step(o.warmup + s, true);
  comm.barrier();  // the slowest rank's time counts
  t.elapsed = seconds(t_start, Clock::now());
  be.release(x_dev);
  comm.allreduce(t.phase, kPhases, ReduceOp::avg);
  return t;
}

// FLOPs counted per image: 3 x the forward pass of every trained network (forward, input
// gradient, weight gradient), summed. A nominal count: see docs/performance.md.
struct FlopCounts {
  std::string nets_text;           // each network's forward MFLOP per image
  double per_image = 0;            // the count
  const Layer* largest = nullptr;  // the largest linear layer of any trained network
};

FlopCounts count_flops(Trainee& trainee) {
  FlopCounts f;
  double fwd = 0;
  for (const TrainedNet& n : trainee.all_nets()) {
    const double nf = n.net->forward_flops_per_sample();
    fwd += nf;
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s%s %.3f", f.nets_text.empty() ? "" : ", ",
                  n.net->name().c_str(), nf * 1e-6);
    f.nets_text += buf;
    for (const Layer& l : n.net->layers())
      if (l.kind == LayerKind::linear &&
          (!f.largest || l.in[0] * l.out[0] > f.largest->in[0] * f.largest->out[0]))
        f.largest = &l;
  }
  f.per_image = 3 * fwd;
  return f;
}

// Machine limit: the backend's matmul on the largest linear layer's shape, every rank at once
// (so 2 ranks x 1 thread see the same contention the training did).
struct MatmulReference {
  int in = 0, out = 0;
  double gflops = 0;  // this rank's
  double total = 0;   // summed over the ranks
};

MatmulReference matmul_reference(Backend<float>& be, const Layer* largest, int B,
                                 Communicator& comm) {
  MatmulReference m;
  if (!largest) return m;
  m.in = int(largest->in[0]), m.out = int(largest->out[0]);
  comm.barrier();
  m.gflops = 2.0 * B * m.in * m.out / matmul_seconds(be, B, m.in, m.out) * 1e-9;
  double v[1] = {m.gflops};
  comm.allreduce(v, 1, ReduceOp::sum);
  m.total = v[0];
  return m;
}

// Every rank's peak resident memory, MiB.
std::vector<double> peak_memory_mib(Communicator& comm) {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::vector<double> peak(size_t(comm.size()), 0.0);
  peak[size_t(comm.rank())] = double(ru.ru_maxrss) / 1024.0;  // KiB -> MiB
  comm.allreduce(peak.data(), peak.size(), ReduceOp::sum);
  return peak;
}

// Everything bench reports, gathered on every rank; rank 0 prints it.
struct BenchFigures {
  StepTimes times;
  int steps = 0;
  double step_s = 0, images_per_s = 0;
  FlopCounts flops;
  MatmulReference mm;
  double heavy_per_image = 0;    // FLOPs of the step's GEMMs and convolutions, per image
  HeavyReference heavy;          // the same operations timed alone (none for the GAN)
  double disc_update_flops = 0;  // one update of the latent discriminator (0: none)
  std::vector<double> peak;      // MiB per rank
};

void print_setup(const BenchOptions& o, const Config& c, const ImageGeom& g,
                 const std::string& image_from, const std::string& be_name,
                 const LocalPlacement& place, Trainee& trainee, int world,
                 const FlopCounts& flops) {
  const int B = c.train.batch;
  std::printf(
      "distvae bench %s: model %s, synthetic %s images %lldx%lldx%lld (%s; no dataset "
      "read)\n",
      o.config.c_str(), c.model.family.c_str(),
      c.data.binarize == "dynamic" ? "binary" : "intensity", (long long)g.height,
      (long long)g.width, (long long)g.channels, image_from.c_str());
  std::printf(
      "batch %d x %d rank(s) = %d, backend %s, %d thread(s) per rank (%s), %d warm-up + "
      "%d timed steps\n",
      B, world, B * world, be_name.c_str(), place.threads,
      o.threads > 0 ? "--threads" : place.threads_from.c_str(), o.warmup, o.steps);
  if (world > 1) std::printf("gradient all-reduce: %s\n", trainee.reduction().c_str());
  std::printf("cpu: %s, %u logical CPUs; our loops run %s\n", cpu_model().c_str(),
              std::thread::hardware_concurrency(), isa_clone_level());
  if (c.train.backend == "dnnl" && flops.largest)
    std::printf("oneDNN %s: %s kernels; matmul %dx%dx%d runs %s\n", dnnl_library_version().c_str(),
                dnnl_cpu_isa().c_str(), B, int(flops.largest->in[0]), int(flops.largest->out[0]),
                dnnl_matmul_impl(B, int(flops.largest->in[0]), int(flops.largest->out[0])).c_str());
  std::printf("forward MFLOP/image: %s; counted 3 x forward = %.3f MFLOP/image\n",
              flops.nets_text.c_str(), flops.per_image * 1e-6);
}

void print_throughput(const BenchFigures& f, const Config& c, int world, int threads) {
  const int B = c.train.batch;
  const double flops_per_image = f.flops.per_image;
  std::printf("images/s:             %.1f\n", f.images_per_s);
  std::printf("step time:            %.3f ms\n", f.step_s * 1e3);
  std::printf("GFLOP/s:              %.1f  (3 x forward FLOPs per image x images/s, all ranks)\n",
              flops_per_image * f.images_per_s * 1e-9);
  if (f.heavy_per_image > 0)
    std::printf(
        "GFLOP/s of GEMMs/convs: %.1f  (%.3f MFLOP/image the step runs: forwards, weight "
        "gradients, input gradients but the data's)\n",
        f.heavy_per_image * f.images_per_s * 1e-9, f.heavy_per_image * 1e-6);
  if (f.flops.largest) {
    std::printf(
        "matmul GFLOP/s:       %.1f  (backend linear_forward %dx%dx%d, MxKxN, per rank, "
        "%d thread(s)",
        f.mm.gflops, B, f.mm.in, f.mm.out, threads);
    if (world > 1) std::printf("; %.1f over %d ranks at once", f.mm.total, world);
    std::printf(")\n");
    std::printf("of matmul reference:  %.1f %%\n",
                100.0 * flops_per_image * f.images_per_s * 1e-9 / f.mm.total);
  }
  if (!f.heavy.each.empty()) {
    std::printf(
        "GEMM/conv reference:  %.1f GFLOP/s per rank  (the step's %d distinct GEMMs and "
        "convolutions, each timed alone through the backend: %.3f ms per step)\n",
        f.heavy.flops / f.heavy.seconds * 1e-9, int(f.heavy.each.size()), f.heavy.seconds * 1e3);
    std::printf("step at:              %.1f %% of it  (those operations alone / the step)\n",
                100.0 * f.heavy.seconds / f.step_s);
  }
  if (f.disc_update_flops > 0) {
    const double per_update = f.times.phase[kDisc] / (double(c.objective.n_disc) * f.steps);
    std::printf(
        "discriminator update: %.1f GFLOP/s  (%.1f MFLOP in %.3f ms per update, %d per step: "
        "forward, weight gradients, input gradients but the first layer's)\n",
        f.disc_update_flops / per_update * 1e-9, f.disc_update_flops * 1e-6, per_update * 1e3,
        c.objective.n_disc);
  }
}

void print_breakdown(const BenchFigures& f, int steps) {
  const double step_ms = f.step_s * 1e3;
  std::printf("breakdown, ms per step (mean over ranks):\n");
  const struct {
    Phase p;
    const char* what;
  } rows[] = {{kInput, "input copy to the backend"},
              {kDisc, "discriminator updates (fwd, bwd, sync, optimizer)"},
              {kDiscExposed, "  of which exposed gradient sync"},
              {kForwardBackward, "model forward + backward"},
              {kExposed, "gradient sync, exposed (not hidden by backward)"},
              {kChecks, "non-finite checks + flag all-reduce"},
              {kOptimizer, "optimizer"}};
  double accounted = 0;
  for (const auto& row : rows) {
    const double ms = 1e3 * f.times.phase[row.p] / steps;
    if (row.p != kDiscExposed) accounted += ms;
    std::printf("  %-50s %8.3f  %5.1f %%\n", row.what, ms, 100.0 * ms / step_ms);
  }
  const double rest = step_ms - accounted;
  std::printf("  %-50s %8.3f  %5.1f %%\n", "other (loop, waiting for the slowest rank)", rest,
              100.0 * rest / step_ms);
  std::printf("  %-50s %8.3f  (synthetic batches in memory)\n", "waiting for data", 0.0);
}

void print_memory_and_result(const BenchFigures& f) {
  std::printf("peak memory:          %.1f MiB (rank 0), %.1f MiB (largest rank)\n", f.peak[0],
              *std::max_element(f.peak.begin(), f.peak.end()));
  if (f.times.skipped > 0)
    std::printf("note: %d timed step(s) had non-finite values and skipped the update\n",
                f.times.skipped);
  // One line for scripts (bench/compare.sh): the figures above, matmul summed over ranks.
  // of_reference: the step at that % of its GEMM/conv reference (0: no reference).
  std::printf(
      "result: images_per_s=%.1f gflops=%.2f matmul_gflops=%.2f step_ms=%.3f of_reference=%.1f\n",
      f.images_per_s, f.flops.per_image * f.images_per_s * 1e-9, f.mm.total, f.step_s * 1e3,
      f.heavy.each.empty() ? 0.0 : 100.0 * f.heavy.seconds / f.step_s);
}

int bench(const BenchOptions& o, Communicator& launch_comm) {
  Config c = load_config(o.config, o.sets);
  if (o.threads > 0) c.train.threads = o.threads;
  // As in train: a GPU run reduces device buffers through NCCL.
  const std::unique_ptr<Communicator> gpu_comm =
      c.train.backend == "cuda" ? make_nccl_communicator(launch_comm) : nullptr;
  Communicator& comm = gpu_comm ? *gpu_comm : launch_comm;
  const LocalPlacement place = discover_placement(c.train.threads);
  omp_set_num_threads(place.threads);

  std::string image_from = "--image";
  const ImageGeom g = o.image.empty() ? infer_image(c, &image_from) : parse_image(o.image);
  auto backend = make_backend(c.train.backend);
  if (o.iw > 0) {  // buffers sized as distvae eval sizes them: passes of eval.iw_batch samples
    Model m = build_model(c, g, *backend, c.eval.iw_batch);
    m.init(uint64_t(c.train.seed));
    return bench_iw(o, c, m, *backend, g, comm, place);
  }
  const int B = c.train.batch, world = comm.size();
  Trainee trainee(c, g, *backend, comm, B);
  BenchFigures f;
  f.times = time_steps(o, c, trainee, *backend, comm, size_t(g.pixels()));
  f.steps = o.steps;
  f.step_s = f.times.elapsed / o.steps;
  f.images_per_s = double(o.steps) * B * world / f.times.elapsed;
  f.flops = count_flops(trainee);
  f.mm = matmul_reference(*backend, f.flops.largest, B, comm);
  const std::vector<NetUse> uses = training_uses(c, trainee.model(), B);
  if (!uses.empty()) {
    comm.barrier();  // every rank at once, as in the steps
    f.heavy = heavy_reference(*backend, uses);
    f.heavy_per_image = f.heavy.flops / B;
  }
  if (trainee.model().latent_disc)
    f.disc_update_flops =
        heavy_flops({disc_updates_use(c, trainee.model(), B)}) / c.objective.n_disc;
  f.peak = peak_memory_mib(comm);
  if (comm.rank() != 0) return 0;
  const std::string be_name =
      backend->name() == "dnnl" ? "dnnl, ISA " + dnnl_cpu_isa() : backend->name();
  print_setup(o, c, g, image_from, be_name, place, trainee, world, f.flops);
  print_throughput(f, c, world, place.threads);
  print_breakdown(f, o.steps);
  if (o.ops && !f.heavy.each.empty()) print_ops(f.heavy, "/step");
  print_memory_and_result(f);
  return 0;
}

}  // namespace

void register_bench_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<BenchOptions>();
  auto* b = app.add_subcommand(
      "bench",
      "Training images/s, GFLOP/s and a step-time breakdown of a config's model on synthetic "
      "batches (no dataset needed: the image shape comes from the model), through the same step "
      "code as train; under mpirun every rank trains and rank 0 prints (docs/performance.md)");
  b->add_option("config", o->config, "YAML config file")->required()->check(CLI::ExistingFile);
  b->add_option("--steps", o->steps, "Timed training steps")->check(CLI::Range(1, 10000000));
  b->add_option("--warmup", o->warmup, "Untimed steps first")->check(CLI::Range(0, 10000000));
  b->add_option("--threads", o->threads,
                "Compute threads per rank (default: train.threads, SLURM_CPUS_PER_TASK, "
                "OMP_NUM_THREADS, or the cores divided among the node's ranks)")
      ->check(CLI::Range(1, 4096));
  b->add_option("--image", o->image,
                "Image shape HxWxC (default: the decoder's or generator's output shape)");
  b->add_option("--set", o->sets, "Override a config key: --set train.batch=256 (repeatable)");
  b->add_option("--iw", o->iw,
                "Time the importance-weighted evaluation instead (distvae eval's code) with this "
                "many samples per image, on --images synthetic images split over the ranks")
      ->check(CLI::Range(1, 1000000));
  b->add_option("--images", o->images, "Images for --iw")->check(CLI::Range(1, 100000000));
  b->add_flag("--ops", o->ops,
              "Also list each GEMM and convolution of the reference: calls, time alone, GFLOP/s");
  b->callback([o, &exit_code] {
    exit_code = run_mpi_job([&](Communicator& comm) { return bench(*o, comm); });
  });
}

}  // namespace distvae
