// The MPI session (initialised once, singleton launch included) and the MPI communicator.
#pragma once

#include <memory>
#include <string>

#include "dist/communicator.h"

namespace distvae {

// The thread level to ask MPI for: MPI_THREAD_MULTIPLE, so gradient buckets are reduced by the
// communication thread; DISTVAE_MPI_THREAD_LEVEL=funneled asks for FUNNELED only, and buckets use
// MPI_Iallreduce instead (for MPI stacks where THREAD_MULTIPLE is slow or broken, and to test it).
int requested_thread_level();

// Initialises MPI (at requested_thread_level(), requiring at least FUNNELED) unless it already
// is, and finalises it on destruction. One per process, owned by main's command.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

 private:
  bool owns_ = false;
};

// The MPI library's own name and version, e.g. "Open MPI v4.1.4" (callable before MPI_Init).
std::string mpi_library_version();

// A communicator over MPI_COMM_WORLD. Requires an MpiSession alive.
std::unique_ptr<Communicator> make_mpi_communicator();

}  // namespace distvae
