// The run directory's layout: resolved config, metrics, checkpoints (newest kept), images; and
// its ownership: one run at a time, an earlier run never mixed with a new one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace distvae {

// Holds <dir>/.lock with flock(2) for as long as it lives: a second run on the same directory
// fails at once, naming the holder's host and PID (recorded in the file). The kernel releases the
// lock when the process ends, however it ends, so a killed run leaves no stale lock.
class RunDirLock {
 public:
  explicit RunDirLock(const std::string& dir);  // throws when another process holds it
  ~RunDirLock();
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;

 private:
  int fd_ = -1;
};

// What a run directory holds of an earlier run: its checkpoints (newest first) and whether
// metrics.jsonl has records.
struct RunDirContents {
  std::vector<std::string> checkpoints;
  bool metrics = false;
  bool holds_run() const { return metrics || !checkpoints.empty(); }
  std::string describe() const;  // "3 checkpoint(s) (newest ckpt-000004.h5) and metrics.jsonl"
};
RunDirContents inspect_run_dir(const std::string& dir);

// --overwrite: moves everything in dir but the lock into dir/replaced-<YYYYmmdd-HHMMSS>/ (nothing
// is deleted) and returns that folder.
std::string move_run_aside(const std::string& dir);

// A new run's id: 16 hex digits from the clock, the host and the PID. Written into every
// checkpoint and metrics record, so a run's files cannot be mistaken for another's.
std::string new_run_id();

// Creates the directory (and checkpoints/) or throws naming it and why it is unusable.
void prepare_run_dir(const std::string& dir);
// ckpt-<epochs done:06d>.h5 at an epoch's end; ckpt-<epochs done:06d>.s<step in epoch:09d>.h5
// for a checkpoint taken inside an epoch (preemption). Names sort in training order.
std::string checkpoint_path(const std::string& dir, int epoch, int64_t step_in_epoch = 0);
// Checkpoints present, newest first.
std::vector<std::string> list_checkpoints(const std::string& dir);
// Removes all but the newest `keep` checkpoints, and partial ones (*.tmp) a crash left behind.
void prune_checkpoints(const std::string& dir, int keep);

}  // namespace distvae
