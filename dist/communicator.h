// The transport seam: rank, size and the few collectives training needs, over raw buffers.
// Implementations: LocalCommunicator (one rank, for tests and single-process runs), MPI, and NCCL
// (GPU buffers, CUDA builds: dist/nccl_communicator.*).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace distvae {

enum class ReduceOp { sum, avg };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void allreduce(float* data, size_t n, ReduceOp op) = 0;
  virtual void allreduce(double* data, size_t n, ReduceOp op) = 0;
  // Starts an in-place all-reduce and returns its ticket. Tickets complete in the order they
  // were issued; a ticket is redeemed once with wait. No allocation: a backend keeps a fixed ring
  // of kMaxInFlight slots, so at most that many reductions may be outstanding.
  static constexpr size_t kMaxInFlight = 1024;
  virtual uint64_t iallreduce(float* data, size_t n, ReduceOp op) = 0;
  virtual bool test(uint64_t ticket) = 0;  // drives progress; true once complete
  virtual void wait(uint64_t ticket) = 0;
  // n floats, zeroed, for a buffer all-reduced every step (the gradients), placed where this
  // node's other ranks can read it so allreduce on it skips MPI's copies (dist/shm_reduce.h).
  // Collective: every rank asks for the same n in the same order. Empty where the backend has no
  // such memory or could not get it on some rank; the caller then keeps its own.
  virtual std::shared_ptr<float> alloc_reducible(size_t) { return {}; }
  // Splitting a buffer's reduction and update over the node's ranks (dist/shm_reduce.h):
  // reduce_scatter all-reduces data[0, n) only where owned_slice(n) says, so this rank can update
  // just that part of the parameters; all_gather(data, n) then gives every rank every slice's
  // owner's values. Backends without a split own everything: a full all-reduce, nothing to gather.
  virtual std::pair<size_t, size_t> owned_slice(size_t n) const { return {0, n}; }
  virtual void reduce_scatter(float* data, size_t n, ReduceOp op) { allreduce(data, n, op); }
  virtual void all_gather(float*, size_t) {}
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  [[noreturn]] virtual void abort(int code) = 0;
};

std::unique_ptr<Communicator> make_local_communicator();

}  // namespace distvae
