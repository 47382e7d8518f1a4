// The run directory's layout: resolved config, metrics, checkpoints (newest kept), images.
#pragma once

#include <string>
#include <vector>

namespace distvae {

// Creates the directory (and checkpoints/) or throws naming it and why it is unusable.
void prepare_run_dir(const std::string& dir);
std::string checkpoint_path(const std::string& dir, int epoch);
// Checkpoints present, newest first.
std::vector<std::string> list_checkpoints(const std::string& dir);
// Removes all but the newest `keep` checkpoints.
void prune_checkpoints(const std::string& dir, int keep);

}  // namespace distvae
