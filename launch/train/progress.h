// Training progress on rank 0: on a terminal a live line per epoch (bar, step, ELBO, KL, images/s,
// ETA) redrawn in place; otherwise (SLURM logs, pipes) one plain line every few seconds.
//
// Whether the user sees a terminal: DISTVAE_TTY=1 or 0 says so (launch/mpirun.sh sets it from its
// own stdout); else under mpirun or srun (which may hand a rank a pseudo-terminal even when their
// own output goes to a file) plain lines; else isatty.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace distvae {

class Progress {
 public:
  // enabled: rank 0 and not --quiet. plain_every_seconds: interval of plain lines off a terminal.
  // world: the ranks, each taking as many images per step as rank 0 (images/s is the job's).
  // The two figures shown are named a and b ("elbo" and "kl" for a VAE).
  Progress(bool enabled, double plain_every_seconds, int total_epochs, int world = 1,
           std::FILE* out = stdout, const char* a = "elbo", const char* b = "kl");

  void start_epoch(int epoch, int64_t steps, int64_t first_step);
  // One optimizer step of rank 0's share: per-image sums of this step.
  void step(double a_sum, double b_sum, int64_t images);
  // Ends the epoch's line; the caller prints the epoch summary after it.
  void end_epoch();
  bool tty() const { return tty_; }

 private:
  using Clock = std::chrono::steady_clock;
  void draw(bool final);
  bool enabled_, tty_;
  double plain_every_;
  int total_epochs_, world_;
  std::FILE* out_;
  const char *a_name_, *b_name_;
  int epoch_ = 0;
  int64_t steps_ = 0, done_ = 0, first_ = 0;
  double elbo_ = 0, kl_ = 0, images_ = 0;
  Clock::time_point t_epoch_, t_drawn_;
};

}  // namespace distvae
