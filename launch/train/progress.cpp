// Drawing the progress line: \r-redrawn with a bar on a terminal, plain lines elsewhere.
#include "launch/train/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace distvae {

namespace {

// Read when the program starts, before MPI_Init: a singleton MPI (distvae run without mpirun)
// sets the same variables in the process's environment.
const bool g_started_by_launcher = [] {
  for (const char* launcher : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "SLURM_PROCID"})
    if (std::getenv(launcher)) return true;
  return false;
}();

bool live_terminal(std::FILE* out) {
  if (const char* v = std::getenv("DISTVAE_TTY")) return std::string(v) == "1";
  if (g_started_by_launcher) return false;
  return isatty(fileno(out));
}

}  // namespace

Progress::Progress(bool enabled, double plain_every_seconds, int total_epochs, int world,
                   std::FILE* out, const char* a, const char* b)
    : enabled_(enabled),
      tty_(enabled && live_terminal(out)),
      plain_every_(plain_every_seconds),
      total_epochs_(total_epochs),
      world_(world),
      out_(out),
      a_name_(a),
      b_name_(b) {}

void Progress::start_epoch(int epoch, int64_t steps, int64_t first_step) {
  epoch_ = epoch, steps_ = steps, first_ = first_step, done_ = first_step;
  elbo_ = kl_ = images_ = 0;
  t_epoch_ = t_drawn_ = Clock::now();
}

void Progress::step(double a_sum, double b_sum, int64_t images) {
  ++done_;
  elbo_ += a_sum, kl_ += b_sum, images_ += double(images);
  if (!enabled_) return;
  const double since = std::chrono::duration<double>(Clock::now() - t_drawn_).count();
  if (since >= (tty_ ? 0.2 : plain_every_)) draw(false);
}

void Progress::end_epoch() {
  if (!enabled_) return;
  draw(true);
  if (tty_) std::fputc('\n', out_);
  std::fflush(out_);
}

void Progress::draw(bool final) {
  t_drawn_ = Clock::now();
  const double secs = std::chrono::duration<double>(t_drawn_ - t_epoch_).count();
  const double rate = secs > 0 ? images_ * world_ / secs : 0;
  const double per_step = done_ > first_ ? secs / double(done_ - first_) : 0;
  // ETA of the whole run at this epoch's pace.
  const double left = per_step * double((steps_ - done_) + steps_ * (total_epochs_ - epoch_ - 1));
  const int eta = int(left + 0.5);
  char eta_text[32];
  std::snprintf(eta_text, sizeof eta_text, "%d:%02d:%02d", eta / 3600, eta / 60 % 60, eta % 60);
  const double n = std::max(images_, 1.0);
  char stats[160];
  std::snprintf(stats, sizeof stats, "%lld/%lld  %s %.2f  %s %.2f  %.0f img/s  ETA %s",
                (long long)done_, (long long)steps_, a_name_, elbo_ / n, b_name_, kl_ / n, rate,
                eta_text);
  if (tty_) {
    constexpr int kWidth = 24;
    const int filled = steps_ > 0 ? int(kWidth * double(done_) / double(steps_)) : kWidth;
    const std::string bar =
        std::string(size_t(filled), '#') + std::string(size_t(kWidth - filled), '-');
    std::fprintf(out_, "\r\x1b[Kepoch %d/%d [%s] %s", epoch_ + 1, total_epochs_, bar.c_str(),
                 stats);
  } else if (!final || done_ > first_) {
    std::fprintf(out_, "epoch %d/%d step %s\n", epoch_ + 1, total_epochs_, stats);
  }
  std::fflush(out_);
}

}  // namespace distvae
