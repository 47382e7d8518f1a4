// One rank's error aborts every rank (see launch/cli/mpi_job.h).
#include "launch/cli/mpi_job.h"

#include <cstdio>
#include <exception>

#include "dist/mpi_communicator.h"

namespace distvae {

int run_mpi_job(const std::function<int(Communicator& comm)>& job) {
  MpiSession mpi(nullptr, nullptr);  // singleton MPI when not started by mpirun / srun
  auto comm = make_mpi_communicator();
  try {
    return job(*comm);
  } catch (const std::exception& e) {
    if (comm->size() == 1) throw;
    std::fprintf(stderr, "distvae: error: rank %d: %s\n", comm->rank(), e.what());
    std::fflush(stderr);
    comm->abort(1);
  }
  return 1;  // not reached (abort ends the job); the compiler cannot see through the virtual
}

}  // namespace distvae
