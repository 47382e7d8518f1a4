// Bucketed gradient all-reduce of one network's flat gradient buffer, overlapped with backward:
// a bucket's non-blocking reduction starts as soon as backward reports its gradients final.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "core/bucket.h"
#include "dist/communicator.h"

namespace distvae {

class GradSync {
 public:
  // buckets: as ParamStore::buckets gives them, bucket 0 at the highest offsets (ready first).
  // Every rank must pass the same buckets: they are started in index order everywhere.
  // split (without overlap only): finish() leaves only owned() complete, for an update split
  // over the node's ranks (Communicator::reduce_scatter).
  GradSync(Communicator& comm, float* grads, std::vector<Bucket> buckets, bool overlap,
           bool split = false);

  void begin_step();
  // From backward: gradients at offsets >= lowest_ready are final. Starts every bucket now
  // complete, and drives progress of those in flight (MPI_Test) so they advance during backward.
  void on_ready(size_t lowest_ready);
  // Starts what is left, waits for all; gradients are then averaged over ranks. Without overlap,
  // one blocking all-reduce of the buckets' whole span instead.
  void finish();
  // Seconds spent blocked in finish() over the last step: the communication backward did not hide.
  double exposed_seconds() const { return exposed_; }
  size_t num_buckets() const { return buckets_.size(); }
  // The offsets [lo, hi) of the gradient buffer that finish() leaves all-reduced.
  std::pair<size_t, size_t> owned() const { return owned_; }

 private:
  void start(size_t i);
  Communicator& comm_;
  float* grads_;
  std::vector<Bucket> buckets_;
  bool overlap_;
  bool split_;
  size_t lo_ = 0, hi_ = 0;  // the span of all buckets
  std::pair<size_t, size_t> owned_{0, 0};
  size_t next_ = 0;
  std::vector<uint64_t> inflight_;  // tickets of this step, capacity reserved up front
  double exposed_ = 0;
};

}  // namespace distvae
