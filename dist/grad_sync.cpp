// Starting buckets in index order as backward completes them, and waiting for them at the end.
#include "dist/grad_sync.h"

#include <algorithm>
#include <chrono>

namespace distvae {

GradSync::GradSync(Communicator& comm, float* grads, std::vector<Bucket> buckets, bool overlap)
    : comm_(comm), grads_(grads), buckets_(std::move(buckets)), overlap_(overlap) {
  inflight_.reserve(buckets_.size());
}

void GradSync::begin_step() {
  next_ = 0;
  inflight_.clear();
}

void GradSync::start(size_t i) {
  const Bucket& b = buckets_[i];
  inflight_.push_back(comm_.iallreduce(grads_ + b.begin, b.end - b.begin, ReduceOp::avg));
}

void GradSync::on_ready(size_t lowest_ready) {
  if (!overlap_ || comm_.size() == 1) return;
  while (next_ < buckets_.size() && buckets_[next_].begin >= lowest_ready) start(next_++);
  for (uint64_t t : inflight_) comm_.test(t);
}

void GradSync::finish() {
  const auto t0 = std::chrono::steady_clock::now();
  if (comm_.size() > 1 && overlap_) {
    while (next_ < buckets_.size()) start(next_++);
    for (uint64_t t : inflight_) comm_.wait(t);
  } else if (comm_.size() > 1 && !buckets_.empty()) {
    // Nothing to overlap with any more: one blocking call from this thread over the span of all
    // buckets, without a hand-off per bucket to the communication thread and its wake-ups.
    size_t lo = buckets_.front().begin, hi = buckets_.front().end;
    for (const Bucket& b : buckets_) lo = std::min(lo, b.begin), hi = std::max(hi, b.end);
    comm_.allreduce(grads_ + lo, hi - lo, ReduceOp::avg);
  }
  exposed_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace distvae
