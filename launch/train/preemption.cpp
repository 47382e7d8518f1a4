// Preemption signals: received by one thread with sigwait, or by a handler that sets a flag; and
// the SLURM requeue call.
#include "launch/train/preemption.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

namespace distvae {

namespace {
std::atomic<int> g_preempt{0};  // lock-free, so the handler may set it
std::atomic<bool> g_armed{false};
std::atomic<bool> g_announce{false};  // this process says what a Ctrl-C does (rank 0)
std::atomic<int> g_interrupts{0};     // SIGINTs received while armed

extern "C" void on_preempt_signal(int) {
  g_preempt.store(1, std::memory_order_relaxed);
}

// Armed: the first Ctrl-C stops the run like SIGTERM, with a checkpoint; the second exits now.
// A launcher (srun) may hand the SIGINT to every rank: only rank 0 says so.
void on_interrupt() {
  const bool say = g_announce.load();
  if (g_interrupts.fetch_add(1) == 0) {
    g_preempt.store(1);
    if (say)
      std::fprintf(stderr,
                   "\ndistvae: Ctrl-C: stopping after this step to write a checkpoint (continue "
                   "with --resume); press Ctrl-C again to exit at once without one\n");
    return;
  }
  if (say) std::fprintf(stderr, "\ndistvae: second Ctrl-C: exiting now, without a checkpoint\n");
  std::fflush(stderr);
  _exit(130);  // 128 + SIGINT, as a shell reports an interrupted program
}

sigset_t preemption_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGINT);
  return set;
}
}  // namespace

void start_signal_thread() {
  static std::once_flag once;
  std::call_once(once, [] {
    const sigset_t set = preemption_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // inherited by every thread started after this
    std::thread([set] {
      for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (g_armed.load()) {
          if (sig == SIGINT)
            on_interrupt();
          else
            g_preempt.store(1);
          continue;
        }
        // Nothing to checkpoint (not training): the signal's default action, ending the process.
        std::signal(sig, SIG_DFL);
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sig);
        pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
        raise(sig);
      }
    }).detach();
  });
}

void arm_preemption(bool announce) {
  g_announce.store(announce);
  g_armed.store(true);
  // For threads that do not block the signals (start_signal_thread was not called first, as in
  // tests that train in-process): a handler that only sets the flag.
  struct sigaction sa {};
  sa.sa_handler = on_preempt_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

bool preemption_requested() {
  return g_preempt.load(std::memory_order_relaxed) != 0;
}

bool request_slurm_requeue() {
  const char* job = std::getenv("SLURM_JOB_ID");
  if (!job || !*job) return false;
  for (const char* c = job; *c; ++c)
    if (*c < '0' || *c > '9') return false;  // only ever a number; never pass other text to a shell
  const std::string cmd = std::string("scontrol requeue ") + job + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

}  // namespace distvae
