// Where this process sits: rank and size come from the communicator; the local rank, ranks per
// node and compute threads from the launcher's environment (mpirun or SLURM).
#pragma once

#include <string>

namespace distvae {

struct LocalPlacement {
  int local_rank = 0, local_size = 1;
  int threads = 1;
  std::string threads_from;  // which setting decided the thread count, for the start-up summary
  // A CPU this rank may use beyond its compute threads, that no other rank of the node needs:
  // where a communication thread can run without taking time from compute.
  bool spare_cpu = false;
};

// threads: train.threads when > 0; else SLURM_CPUS_PER_TASK; else OMP_NUM_THREADS; else the
// cores of this node divided among its ranks. Local rank from OMPI_COMM_WORLD_LOCAL_RANK or
// SLURM_LOCALID.
LocalPlacement discover_placement(int config_threads);

// train.overlap resolved: "true" / "false", or for "auto" whether the placement has a spare CPU
// (on a fully subscribed node the communication thread's work and its MPI polling come out of
// compute time, and reducing after backward was faster: 36k against 30k images/s for 2 ranks x 1
// thread on 2 cores).
bool overlap_enabled(const std::string& setting, const LocalPlacement& p);

// data.decode_on resolved: true for "compute", or for "auto" when the placement has no spare CPU
// and several compute threads. Loader work then stalls all of them, not just the one it preempts.
// A single compute thread loses only what the loader takes, and the loader thread can also use
// the time that thread waits for the other ranks.
bool decode_on_compute(const std::string& setting, const LocalPlacement& p);

}  // namespace distvae
