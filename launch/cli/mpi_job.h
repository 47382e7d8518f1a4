// The one place where a subcommand that runs on every rank of an MPI job turns an error into the
// end of the job.
#pragma once

#include <functional>

#include "dist/communicator.h"

namespace distvae {

// Runs `job` on this process's rank of MPI_COMM_WORLD (a singleton world outside mpirun / srun)
// and returns its exit code. An exception on one rank of several must end every rank, since the
// others may be waiting in a collective: that rank prints "distvae: error: rank R: what" and
// aborts the job with exit code 1. A single rank rethrows, for main to print and return 1.
int run_mpi_job(const std::function<int(Communicator& comm)>& job);

}  // namespace distvae
