// The training loop that wires core, dist and io: data -> step -> gradient sync -> optimizer ->
// metrics, validation, sample grids and checkpoints.
#pragma once

#include <string>

#include "dist/communicator.h"
#include "launch/config/config.h"

namespace distvae {

struct TrainOptions {
  std::string run_dir;
  bool resume = false;
  bool overwrite = false;  // move an earlier run's files aside (never delete) and start anew
  bool quiet = false;
  int stop_after_epochs = 0;      // stop (with a checkpoint) after this many epochs of this run
  double log_every_seconds = 10;  // progress lines when stdout is not a terminal
};

// Returns the process exit code. Throws on errors (bad data, unwritable run directory, ...).
int train(const Config& c, const TrainOptions& o, Communicator& comm);

}  // namespace distvae
