// Hang detection: a thread per rank writes a heartbeat file (<dir>/rank-<r>: a count of the work
// this rank has done) every second and watches its own progress. When this rank has made no
// progress for `timeout` seconds it reads the other ranks' heartbeats: a rank whose file went
// stale is hung (stopped, stuck in I/O) or dead, and the job is aborted with a message naming it;
// if every rank is alive but none has progressed for `timeout` either, it is a deadlock and the
// job is aborted too. So no rank waits forever in a collective. The directory must be visible to
// every rank (the run directory).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace distvae {

class Watchdog {
 public:
  // on_hang receives the message and must end the job (MPI_Abort); it runs on the watchdog thread.
  Watchdog(std::string dir, int rank, int world, double timeout_seconds,
           std::function<void(const std::string&)> on_hang);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Progress: a training step, a validation batch, a checkpoint.
  void beat() { work_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void run();
  std::string dir_;
  int rank_, world_;
  double timeout_;
  std::function<void(const std::string&)> on_hang_;
  std::atomic<int64_t> work_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace distvae
