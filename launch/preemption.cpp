// Signal handlers that set a flag, and the SLURM requeue call.
#include "launch/preemption.h"

#include <csignal>
#include <cstdlib>
#include <string>

namespace distvae {

namespace {
volatile std::sig_atomic_t g_preempt = 0;
extern "C" void on_preempt_signal(int) {
  g_preempt = 1;
}
}  // namespace

void install_preemption_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_preempt_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

bool preemption_requested() {
  return g_preempt != 0;
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
