// Parallel production, ordered consumption: worker threads prepare items (decode, resize,
// render) while the calling thread consumes them strictly in index order (appends to a shard).
#pragma once

#include <cstdint>
#include <functional>

namespace distvae {

// Calls produce(i, slot) for every i in [0, n) on `workers` threads and consume(i, slot) on the
// calling thread for i = 0, 1, ..., n - 1 in that order, each after produce(i) has returned.
// slot = i % window: the caller owns `window` buffers, and at most `window` items are produced
// ahead of consumption, so produce(i) never writes a slot that consume(i - window) still reads.
// workers == 0 runs everything on the calling thread. The first exception thrown by produce or
// consume stops the pipeline (no new item is started, the threads are joined) and is rethrown.
void run_ordered(int64_t n, int workers, int window,
                 const std::function<void(int64_t i, int slot)>& produce,
                 const std::function<void(int64_t i, int slot)>& consume);

}  // namespace distvae
