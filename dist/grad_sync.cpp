// Starting buckets in index order as backward completes them, and waiting for them at the end.
#include "dist/grad_sync.h"

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
  if (comm_.size() > 1) {
    while (next_ < buckets_.size()) start(next_++);
    for (uint64_t t : inflight_) comm_.wait(t);
  }
  exposed_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace distvae
