// The run directory's layout: resolved config, metrics, checkpoints (newest kept), images.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace distvae {

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
