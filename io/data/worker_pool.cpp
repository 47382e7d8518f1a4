// A fixed set of helper threads running a parallel loop with the caller (see
// io/data/worker_pool.h).
#include "io/data/worker_pool.h"

#include <stdexcept>

namespace distvae {

WorkerPool::WorkerPool(int helpers) {
  if (helpers < 0) throw std::invalid_argument("WorkerPool: helpers must be 0 or more");
  threads_.reserve(static_cast<size_t>(helpers));
  for (int t = 0; t < helpers; ++t) threads_.emplace_back([this] { helper(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_start_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void WorkerPool::work() {
  for (;;) {
    int64_t i;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (next_ >= n_) return;
      i = next_++;
    }
    try {
      (*fn_)(i);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
    }
    bool last;
    {
      std::lock_guard<std::mutex> lk(mu_);
      last = ++finished_ == n_;
    }
    if (last) cv_done_.notify_all();
  }
}

void WorkerPool::helper() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_start_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    work();
  }
}

void WorkerPool::parallel_for(int64_t n, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    fn_ = &fn;
    n_ = n;
    next_ = finished_ = 0;
    error_ = nullptr;
    ++generation_;
  }
  cv_start_.notify_all();
  work();
  std::exception_ptr err;
  {
    std::unique_lock<std::mutex> lk(mu_);
    cv_done_.wait(lk, [&] { return finished_ == n_; });
    err = error_;
    n_ = next_ = 0;  // late helpers find nothing to claim
    fn_ = nullptr;
  }
  if (err) std::rethrow_exception(err);
}

}  // namespace distvae
