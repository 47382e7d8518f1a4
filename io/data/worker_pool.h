// A fixed set of helper threads that run the iterations of a parallel loop together with the
// calling thread: the loader's chunk decompression.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace distvae {

class WorkerPool {
 public:
  // `helpers` threads besides the caller (0: parallel_for runs everything on the caller).
  explicit WorkerPool(int helpers);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs fn(i) for i in [0, n) on the helpers and the calling thread; returns when all are done.
  // The first exception thrown by fn is rethrown here (the remaining iterations still run). Not
  // reentrant: one parallel_for at a time.
  void parallel_for(int64_t n, const std::function<void(int64_t)>& fn);
  int threads() const { return static_cast<int>(threads_.size()) + 1; }

 private:
  void helper();
  void work();  // claims iterations of the current loop until none is left

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, next_ = 0, finished_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace distvae
