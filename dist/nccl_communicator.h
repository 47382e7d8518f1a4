// The NCCL communicator: collectives on GPU buffers through NCCL, one GPU per rank, bootstrapped
// over another communicator (MPI). Available in -DDISTVAE_CUDA=ON builds.
#pragma once

#include <memory>

#include "dist/communicator.h"

namespace distvae {

// True when this binary has NCCL (-DDISTVAE_CUDA=ON).
bool nccl_built();

// A communicator over the same ranks as `host`, for a run whose buffers live on GPUs:
//  - start-up: picks this rank's GPU (local rank modulo the visible devices) and makes it current
//    for the calling thread, so create it before the CUDA backend; rank 0's ncclUniqueId reaches
//    the others through host.broadcast.
//  - device memory goes through NCCL on a communication stream. A reduction starts only after the
//    work already enqueued on the calling thread's stream (cudaStreamPerThread, where the CUDA
//    backend computes) by an event, and wait() makes that stream wait for it by another event:
//    no host synchronisation per bucket. Blocking allreduce and broadcast return when done.
//  - host memory (metrics, flags, config checks) goes through `host`, which must outlive this.
// Throws std::runtime_error when built without CUDA, when no GPU is usable, or when NCCL fails
// (e.g. two ranks on one GPU).
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host);

}  // namespace distvae
