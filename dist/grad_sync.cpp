// Starting buckets in index order as backward completes them, and waiting for them at the end.
#include "dist/grad_sync.h"

#include <algorithm>
#include <chrono>

namespace distvae {

GradSync::GradSync(Communicator& comm, float* grads, std::vector<Bucket> buckets, bool overlap,
                   bool split)
    : comm_(comm),
      grads_(grads),
      buckets_(std::move(buckets)),
      overlap_(overlap),
      split_(split && !overlap && comm.size() > 1) {
  inflight_.reserve(buckets_.size());
  if (!buckets_.empty()) {
    lo_ = buckets_.front().begin, hi_ = buckets_.front().end;
    for (const Bucket& b : buckets_) lo_ = std::min(lo_, b.begin), hi_ = std::max(hi_, b.end);
  }
  owned_ = {lo_, hi_};
  if (split_) {
    const auto [a, b] = comm_.owned_slice(hi_ - lo_);
    owned_ = {lo_ + a, lo_ + b};
  }
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
  } else if (comm_.size() > 1 && hi_ > lo_) {
    // Nothing to overlap with any more: one blocking call from this thread over the span of all
    // buckets, without a hand-off per bucket to the communication thread and its wake-ups.
    if (split_)
      comm_.reduce_scatter(grads_ + lo_, hi_ - lo_, ReduceOp::avg);
    else
      comm_.allreduce(grads_ + lo_, hi_ - lo_, ReduceOp::avg);
  }
  exposed_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace distvae
