// The transport seam: rank, size and the few collectives training needs, over raw buffers.
// Implementations: LocalCommunicator (one rank, for tests and single-process runs) and MPI.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace distvae {

enum class ReduceOp { sum, avg };

// A started non-blocking reduction; wait() completes it, test() drives progress.
class Request {
 public:
  virtual ~Request() = default;
  virtual bool test() = 0;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void allreduce(float* data, size_t n, ReduceOp op) = 0;
  virtual void allreduce(double* data, size_t n, ReduceOp op) = 0;
  virtual std::unique_ptr<Request> iallreduce(float* data, size_t n, ReduceOp op) = 0;
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  [[noreturn]] virtual void abort(int code) = 0;
};

std::unique_ptr<Communicator> make_local_communicator();

}  // namespace distvae
