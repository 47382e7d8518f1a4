// Where this process sits: rank and size come from the communicator; the local rank, ranks per
// node and compute threads from the launcher's environment (mpirun or SLURM).
#pragma once

#include <string>

namespace distvae {

struct LocalPlacement {
  int local_rank = 0, local_size = 1;
  int threads = 1;
  std::string threads_from;  // which setting decided the thread count, for the start-up summary
};

// threads: train.threads when > 0; else SLURM_CPUS_PER_TASK; else OMP_NUM_THREADS; else the
// cores of this node divided among its ranks. Local rank from OMPI_COMM_WORLD_LOCAL_RANK or
// SLURM_LOCALID.
LocalPlacement discover_placement(int config_threads);

}  // namespace distvae
