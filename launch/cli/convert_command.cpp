// `distvae convert idx | images | procedural`: their options, and images and procedural across
// the ranks of a job, with progress and summary.
#include "launch/cli/convert_command.h"

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "dist/communicator.h"
#include "io/convert/convert_idx.h"
#include "io/convert/convert_images.h"
#include "io/convert/convert_procedural.h"
#include "launch/cli/mpi_job.h"

namespace distvae {
namespace {

// Ranges of the numeric options, stated in readable numbers (--help shows them).
constexpr int64_t kMaxImages = 1'000'000'000'000;
const CLI::Range kImageCount(int64_t(0), kMaxImages);  // counts where 0 means "none"
const CLI::Range kChunkImages(int64_t(1), int64_t(1) << 20);

using Clock = std::chrono::steady_clock;

std::string clock_text(double seconds) {
  const long s = seconds < 0 ? 0 : long(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

// Rank 0's progress on stderr: on a terminal a line redrawn twice a second, otherwise a plain
// line every 10 seconds (batch logs).
class ProgressPrinter {
 public:
  ProgressPrinter(bool enabled, int world)
      : enabled_(enabled), world_(world), tty_(::isatty(STDERR_FILENO) == 1) {}

  void operator()(const ConvertProgress& p) {
    if (!enabled_) return;
    const auto now = Clock::now();
    const bool last = p.shards_done == p.shards_total;
    if (!last && std::chrono::duration<double>(now - drawn_).count() < (tty_ ? 0.5 : 10.0)) return;
    drawn_ = now;
    const double secs = std::chrono::duration<double>(now - t0_).count();
    const double rate = secs > 0 ? double(p.done) / secs : 0.0;
    const double pct = p.total > 0 ? 100.0 * double(p.done) / double(p.total) : 100.0;
    const std::string eta = rate > 0 ? clock_text(double(p.total - p.done) / rate) : "?";
    std::fprintf(stderr,
                 "%sconvert%s: %lld/%lld images %5.1f%% | %.0f images/s | ETA %s | shard "
                 "%lld/%lld%s",
                 tty_ ? "\r" : "", world_ > 1 ? " (rank 0)" : "", (long long)p.done,
                 (long long)p.total, pct, rate, eta.c_str(), (long long)p.shards_done,
                 (long long)p.shards_total, tty_ ? "\033[K" : "\n");
    if (tty_ && last) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  bool enabled_;
  int world_;
  bool tty_;
  Clock::time_point t0_ = Clock::now(), drawn_{};
};

void print_splits(const ConvertSummary& s) {
  for (const auto& sp : s.splits) {
    std::printf("%-10s %7lld images (%lldx%lldx%lld) in %zu file(s)\n", sp.split.c_str(),
                (long long)sp.count, (long long)s.height, (long long)s.width, (long long)s.channels,
                sp.files.size());
    for (const auto& f : sp.files) std::printf("  %s\n", f.c_str());
  }
}

// Runs plan (rank 0 first) -> convert (each rank its shards) -> barrier -> finish (rank 0) on
// every rank of the job. `convert` returns this rank's work, `finish` prints the summary.
int run_job(bool quiet, const std::function<void(int rank, int world)>& plan,
            const std::function<ShardWork()>& convert, const std::function<void()>& finish) {
  return run_mpi_job([&](Communicator& comm) {
    const auto t0 = Clock::now();
    // Rank 0 plans first: planning removes what --overwrite replaces, and another rank's removal
    // must not race with a shard rank 0 is already writing in its place.
    if (comm.rank() == 0) plan(0, comm.size());
    comm.barrier();
    if (comm.rank() != 0) plan(comm.rank(), comm.size());
    const ShardWork w = convert();
    double totals[3] = {double(w.written), double(w.resumed), double(w.images)};
    if (comm.size() > 1) comm.allreduce(totals, 3, ReduceOp::sum);  // also waits for all ranks
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    if (comm.rank() != 0) return 0;
    finish();
    if (!quiet) {
      std::printf("%.0f shard(s) written now, %.0f already complete (resumed)", totals[0],
                  totals[1]);
      if (totals[2] > 0)
        std::printf("; %.0f images in %.1f s = %.0f images/s over %d rank(s)", totals[2], secs,
                    totals[2] / secs, comm.size());
      std::printf("\n");
    }
    return 0;
  });
}

int run_convert_images(ConvertImagesOptions o, bool quiet) {
  ImagesConversion plan;
  ProgressPrinter printer(!quiet, 1);
  return run_job(
      quiet,
      [&](int rank, int world) {
        o.rank = rank, o.world = world;
        printer = ProgressPrinter(!quiet && rank == 0, world);
        o.progress = std::ref(printer);
        plan = plan_images_conversion(o);
      },
      [&] { return convert_image_shards(plan); },
      [&] {
        const ConvertImagesSummary s = finish_images_conversion(plan);
        print_splits(s.written);
        for (const auto& f : s.skipped)
          std::printf("skipped unreadable: %s (%s)\n", f.path.c_str(), f.reason.c_str());
        if (!s.skipped.empty()) std::printf("%zu unreadable file(s) skipped\n", s.skipped.size());
        for (const auto& f : s.removed) std::printf("removed stale %s\n", f.c_str());
      });
}

int run_convert_procedural(ConvertProceduralOptions o, bool quiet) {
  ProceduralConversion plan;
  ProgressPrinter printer(!quiet, 1);
  return run_job(
      quiet,
      [&](int rank, int world) {
        o.rank = rank, o.world = world;
        printer = ProgressPrinter(!quiet && rank == 0, world);
        o.progress = std::ref(printer);
        plan = plan_procedural_conversion(o);
      },
      [&] { return convert_procedural_shards(plan); },
      [&] {
        const ConvertSummary s = finish_procedural_conversion(plan);
        print_splits(s);
        for (const auto& f : plan.stale) std::printf("removed stale %s\n", f.c_str());
      });
}

struct IdxArgs {
  ConvertIdxOptions o;
  std::string compress = "gzip";
};

void register_idx(CLI::App* convert, int& exit_code) {
  auto a = std::make_shared<IdxArgs>();
  ConvertIdxOptions& o = a->o;
  auto* cmd = convert->add_subcommand("idx", "IDX files (MNIST, Fashion-MNIST), plain or .gz");
  cmd->add_option("--images", o.images_path, "IDX images file")->required();
  cmd->add_option("--labels", o.labels_path, "IDX labels file");
  cmd->add_option("--out", o.out_dir, "Output directory")->required();
  cmd->add_option("--prefix", o.prefix, "Shard file prefix: <out>/<prefix>-<split>-NNNNN.h5");
  cmd->add_option("--split", o.split,
                  "Split name when --val is 0 (default: from the file name, t10k* = test)");
  cmd->add_option("--val", o.val, "Last N images become the validation split")->check(kImageCount);
  cmd->add_option("--chunk", o.chunk_images, "Images per HDF5 chunk")->check(kChunkImages);
  cmd->add_option("--compress", a->compress, "gzip or none")
      ->check(CLI::IsMember({"gzip", "none"}));
  cmd->add_option("--shard-images", o.shard_images, "Images per file (0: one file per split)")
      ->check(kImageCount);
  cmd->add_flag("--overwrite", o.overwrite, "Replace existing shards");
  cmd->callback([a, &exit_code] {
    a->o.compression = compression_from_string(a->compress);
    print_splits(convert_idx(a->o));
    exit_code = 0;
  });
}

struct ImagesArgs {
  std::string dir, out, prefix = "data", split, crop = "none", filter = "area", compress = "gzip";
  int64_t val = 0, chunk = 256, shard_images = 0;
  int size = 0, channels = 0, threads = 1;
  bool labels = false, no_jpeg_scaling = false, overwrite = false, quiet = false;
};

ConvertImagesOptions images_options(const ImagesArgs& a) {
  ConvertImagesOptions o;
  o.input_dir = a.dir, o.out_dir = a.out, o.prefix = a.prefix;
  o.split = a.split.empty() ? "train" : a.split;
  o.val = a.val;
  o.prep.channels = a.channels > 0 ? a.channels : 1;
  o.prep.size = a.size, o.prep.crop_center = a.crop == "center";
  o.prep.filter = resize_filter_from_string(a.filter);
  o.prep.jpeg_dct_scaling = !a.no_jpeg_scaling;
  o.labels = a.labels;
  o.chunk_images = a.chunk, o.shard_images = a.shard_images, o.threads = a.threads;
  o.compression = compression_from_string(a.compress), o.overwrite = a.overwrite;
  return o;
}

void register_images(CLI::App* convert, int& exit_code) {
  auto a = std::make_shared<ImagesArgs>();
  auto* cmd = convert->add_subcommand(
      "images",
      "A folder of PNG / JPEG images (recursive, sorted), resized; resumable; under mpirun each "
      "rank writes its own shards");
  cmd->add_option("dir", a->dir, "Folder of images")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--out", a->out, "Output directory")->required();
  cmd->add_option("--prefix", a->prefix, "Shard file prefix");
  cmd->add_option("--split", a->split, "Split name (default train)");
  cmd->add_option("--val", a->val, "Last N files (sorted) become the validation split")
      ->check(kImageCount);
  cmd->add_option("--size", a->size, "Resize to SIZE x SIZE (default: keep; all must match)")
      ->check(CLI::Range(1, 16384));
  cmd->add_option("--crop", a->crop, "center: crop the largest centred square first; none")
      ->check(CLI::IsMember({"center", "none"}));
  cmd->add_option("--filter", a->filter, "Resize filter: area or bilinear (antialiased)")
      ->check(CLI::IsMember({"area", "bilinear"}));
  cmd->add_flag("--no-jpeg-scaling", a->no_jpeg_scaling,
                "Decode JPEGs at full size (default: DCT-scaled to >= SIZE, much faster)");
  cmd->add_option("--channels", a->channels, "1 or 3 (default 1)")->check(CLI::IsMember({1, 3}));
  cmd->add_flag("--labels", a->labels,
                "Labels from first-level sub-folder names (DIR/<class>/...)");
  cmd->add_option("--chunk", a->chunk, "Images per HDF5 chunk")->check(kChunkImages);
  cmd->add_option("--compress", a->compress, "gzip, lzf or none")
      ->check(CLI::IsMember({"gzip", "lzf", "none"}));
  cmd->add_option("--shard-images", a->shard_images,
                  "Input files per shard (0: one file); the unit of resume and of MPI ranks")
      ->check(kImageCount);
  cmd->add_option("-j,--threads", a->threads, "Decoding threads")->check(CLI::Range(1, 1024));
  cmd->add_flag("--overwrite", a->overwrite,
                "Replace shards of a different conversion (shards of this one are kept)");
  cmd->add_flag("--quiet", a->quiet, "No progress lines (the summary is still printed)");
  cmd->callback([a, &exit_code] { exit_code = run_convert_images(images_options(*a), a->quiet); });
}

struct ProceduralArgs {
  std::string kind = "sprites", out, prefix = "data", order = "shuffled", compress = "gzip";
  int64_t seed = 1, val = 0, max_images = -1, chunk = 256, shard_images = 65536;
  int threads = 1;
  bool rgb = false, overwrite = false, quiet = false;
};

ConvertProceduralOptions procedural_options(const ProceduralArgs& a) {
  ConvertProceduralOptions o;
  o.kind = a.kind, o.rgb = a.rgb, o.out_dir = a.out;
  o.prefix = a.prefix == "data" ? "" : a.prefix;  // "" picks sprites / sprites_rgb
  o.shuffled = a.order == "shuffled", o.seed = uint64_t(a.seed), o.val = a.val;
  o.max_images = a.max_images > 0 ? a.max_images : 0;
  o.chunk_images = a.chunk, o.shard_images = a.shard_images, o.threads = a.threads;
  o.compression = compression_from_string(a.compress), o.overwrite = a.overwrite;
  return o;
}

void register_procedural(CLI::App* convert, int& exit_code) {
  auto a = std::make_shared<ProceduralArgs>();
  auto* cmd = convert->add_subcommand(
      "procedural",
      "A generated dataset with ground-truth factors (sprites: dSprites-style 64x64)");
  cmd->add_option("--kind", a->kind, "sprites")->check(CLI::IsMember({"sprites"}));
  cmd->add_flag("--rgb", a->rgb, "Coloured shapes on gray backgrounds (2 more factors)");
  cmd->add_option("--out", a->out, "Output directory")->required();
  cmd->add_option("--prefix", a->prefix, "Shard file prefix (default sprites / sprites_rgb)");
  cmd->add_option("--order", a->order, "shuffled (a fixed permutation) or grid (dSprites order)")
      ->check(CLI::IsMember({"shuffled", "grid"}));
  cmd->add_option("--seed", a->seed, "Seed of the shuffled order and of the RGB colours")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--val", a->val, "Last N images of the order become the validation split")
      ->check(kImageCount);
  cmd->add_option("--max-images", a->max_images, "Write only the first N images of the order")
      ->check(CLI::Range(int64_t(1), kMaxImages));
  cmd->add_option("--chunk", a->chunk, "Images per HDF5 chunk")->check(kChunkImages);
  cmd->add_option("--compress", a->compress, "gzip, lzf or none")
      ->check(CLI::IsMember({"gzip", "lzf", "none"}));
  cmd->add_option("--shard-images", a->shard_images, "Images per shard (0: one file)")
      ->check(kImageCount);
  cmd->add_option("-j,--threads", a->threads, "Rendering threads")->check(CLI::Range(1, 1024));
  cmd->add_flag("--overwrite", a->overwrite, "Replace shards of a different conversion");
  cmd->add_flag("--quiet", a->quiet, "No progress");
  cmd->callback(
      [a, &exit_code] { exit_code = run_convert_procedural(procedural_options(*a), a->quiet); });
}

}  // namespace

void register_convert_command(CLI::App& app, int& exit_code) {
  auto* convert = app.add_subcommand("convert", "Convert images to HDF5 shards");
  convert->require_subcommand(1);
  register_idx(convert, exit_code);
  register_images(convert, exit_code);
  register_procedural(convert, exit_code);
}

}  // namespace distvae
