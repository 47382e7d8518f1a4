#include "core/parallel_for.h"

#include <exception>
#include <mutex>

namespace distvae {

void compute_parallel_for(int64_t n, const std::function<void(int64_t)>& fn) {
  std::exception_ptr first;
  std::mutex mu;
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
  for (int64_t i = 0; i < n; ++i) {
    try {
      fn(i);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu);
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

}  // namespace distvae
