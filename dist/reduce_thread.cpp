// The communication thread: pop a bucket, all-reduce it (blocking), mark it done, repeat.
#include "dist/reduce_thread.h"

#include <stdexcept>

namespace distvae {

ReduceThread::ReduceThread(int world_size, NodeSharedReduce* shm)
    : size_(world_size), shm_(shm), ring_(Communicator::kMaxInFlight) {
  // Collectives of two threads must not share a communicator: the thread gets its own.
  if (MPI_Comm_dup(MPI_COMM_WORLD, &comm_) != MPI_SUCCESS)
    throw std::runtime_error("MPI_Comm_dup failed for the gradient all-reduce thread");
  thread_ = std::thread([this] { run(); });
}

ReduceThread::~ReduceThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  MPI_Comm_free(&comm_);
}

uint64_t ReduceThread::submit(float* data, size_t n, ReduceOp op) {
  uint64_t ticket;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (submitted_ - completed_ >= ring_.size())
      throw std::logic_error("more than " + std::to_string(ring_.size()) +
                             " gradient reductions in flight");
    ticket = submitted_++;
    ring_[ticket % ring_.size()] = Task{data, n, op};
  }
  cv_.notify_all();
  return ticket;
}

bool ReduceThread::done(uint64_t ticket) {
  std::lock_guard<std::mutex> lock(mu_);
  return completed_ > ticket;
}

void ReduceThread::wait(uint64_t ticket) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return completed_ > ticket; });
  if (!error_.empty()) throw std::runtime_error(error_);
}

std::string ReduceThread::reduce(const Task& t) {
  try {
    if (shm_ && shm_->reduce(t.data, t.n, t.op)) return {};
  } catch (const std::exception& e) {
    return e.what();
  }
  const int rc = MPI_Allreduce(MPI_IN_PLACE, t.data, int(t.n), MPI_FLOAT, MPI_SUM, comm_);
  if (rc != MPI_SUCCESS)
    return "MPI_Allreduce of a gradient bucket failed (code " + std::to_string(rc) + ")";
  if (t.op == ReduceOp::avg) {
    const float inv = 1.0f / float(size_);
    for (size_t i = 0; i < t.n; ++i) t.data[i] *= inv;
  }
  return {};
}

void ReduceThread::run() {
  for (;;) {
    Task t;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || submitted_ > completed_; });
      if (submitted_ == completed_) return;  // stop requested and nothing left
      t = ring_[completed_ % ring_.size()];
    }
    const std::string failure = reduce(t);
    bool drained;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!failure.empty() && error_.empty()) error_ = failure;
      drained = ++completed_ == submitted_;
    }
    // Waking the waiter after every bucket costs a context switch each (it usually shares the
    // core); it waits for the whole queue anyway, so wake it when the queue has drained.
    if (drained) cv_.notify_all();
  }
}

}  // namespace distvae
