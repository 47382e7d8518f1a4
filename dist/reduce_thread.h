// A communication thread that runs blocking all-reduces, in submission order: through node shared
// memory for buckets in its buffers, else MPI_Allreduce on the thread's own duplicate of
// MPI_COMM_WORLD. Open MPI's non-blocking MPI_Iallreduce (libnbc) reaches about
// 40% of the blocking call's bandwidth on the gradient buckets (bench/allreduce_bench), so
// overlap with backward comes from this thread instead. Needs MPI_THREAD_MULTIPLE.
#pragma once

#include <mpi.h>

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dist/communicator.h"
#include "dist/shm_reduce.h"

namespace distvae {

class ReduceThread {
 public:
  // shm (may be null) takes the buckets that lie in its shared buffers.
  ReduceThread(int world_size, NodeSharedReduce* shm);
  ~ReduceThread();
  ReduceThread(const ReduceThread&) = delete;
  ReduceThread& operator=(const ReduceThread&) = delete;

  // Queues an in-place all-reduce of data[0, n) and returns its ticket; it completes when the
  // thread has run it (and, for avg, divided by the world size). Tickets complete in order.
  uint64_t submit(float* data, size_t n, ReduceOp op);
  bool done(uint64_t ticket);
  void wait(uint64_t ticket);  // throws if the reduction failed

 private:
  struct Task {
    float* data = nullptr;
    size_t n = 0;
    ReduceOp op = ReduceOp::sum;
  };
  void run();
  std::string reduce(const Task& t);  // the failure's message, empty on success

  int size_;
  NodeSharedReduce* shm_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Task> ring_;  // Communicator::kMaxInFlight slots, indexed by ticket
  uint64_t submitted_ = 0;  // tickets issued
  uint64_t completed_ = 0;  // tickets [0, completed_) are done
  std::string error_;       // the first failure, reported by every later wait
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace distvae
