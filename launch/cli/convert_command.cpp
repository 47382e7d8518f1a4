// `distvae convert images | procedural` across the ranks of a job, with progress and summary.
#include "launch/cli/convert_command.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>

#include "dist/communicator.h"
#include "launch/cli/mpi_job.h"

namespace distvae {
namespace {

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

// Runs plan -> convert (each rank its shards) -> barrier -> finish (rank 0) on every rank of the
// job. `convert` returns this rank's work, `finish` prints the summary.
int run_job(bool quiet, const std::function<void(int rank, int world)>& plan,
            const std::function<ShardWork()>& convert, const std::function<void()>& finish) {
  return run_mpi_job([&](Communicator& comm) {
    const auto t0 = Clock::now();
    plan(comm.rank(), comm.size());
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

}  // namespace

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

}  // namespace distvae
