// A parallel loop over the compute threads (the OpenMP team oneDNN and the reference backend
// use), for work that is not a layer: e.g. the loader's decoding, run between steps.
#pragma once

#include <cstdint>
#include <functional>

namespace distvae {

// Runs fn(i) for every i in [0, n) over the OpenMP threads, handing out one i at a time; returns
// when all are done. The first exception thrown by fn is rethrown here once every iteration has
// run (an exception may not leave an OpenMP region).
void compute_parallel_for(int64_t n, const std::function<void(int64_t)>& fn);

}  // namespace distvae
