// Parallel production, ordered consumption (see io/convert/ordered_pipeline.h).
#include "io/convert/ordered_pipeline.h"

#include <condition_variable>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace distvae {

void run_ordered(int64_t n, int workers, int window,
                 const std::function<void(int64_t i, int slot)>& produce,
                 const std::function<void(int64_t i, int slot)>& consume) {
  if (window < 1) throw std::invalid_argument("run_ordered: window must be at least 1");
  if (workers < 0) throw std::invalid_argument("run_ordered: workers must be 0 or more");
  if (workers == 0) {
    for (int64_t i = 0; i < n; ++i) {
      produce(i, static_cast<int>(i % window));
      consume(i, static_cast<int>(i % window));
    }
    return;
  }
  std::mutex mu;
  std::condition_variable cv;
  int64_t next = 0;                                             // the next item a worker claims
  int64_t consumed = 0;                                         // items consumed so far
  std::vector<int64_t> ready(static_cast<size_t>(window), -1);  // slot -> item produced in it
  bool stop = false;
  std::exception_ptr error;

  auto worker = [&] {
    for (;;) {
      int64_t i;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return stop || next >= n || next < consumed + window; });
        if (stop || next >= n) return;
        i = next++;
      }
      try {
        produce(i, static_cast<int>(i % window));
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu);
        if (!error) error = std::current_exception();
        stop = true;
        cv.notify_all();
        return;
      }
      {
        std::lock_guard<std::mutex> lk(mu);
        ready[static_cast<size_t>(i % window)] = i;
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(workers));
  for (int t = 0; t < workers; ++t) threads.emplace_back(worker);

  for (int64_t i = 0; i < n; ++i) {
    const size_t s = static_cast<size_t>(i % window);
    {
      std::unique_lock<std::mutex> lk(mu);
      cv.wait(lk, [&] { return stop || ready[s] == i; });
      if (stop) break;
    }
    try {
      consume(i, static_cast<int>(s));
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu);
      if (!error) error = std::current_exception();
      stop = true;
      break;
    }
    {
      std::lock_guard<std::mutex> lk(mu);
      ++consumed;
    }
    cv.notify_all();
  }
  {
    std::lock_guard<std::mutex> lk(mu);
    stop = true;
  }
  cv.notify_all();
  for (std::thread& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace distvae
