// The training step's batches on the device, one ahead: while step s computes on its batch,
// batch s + 1 is already being uploaded (Backend::upload_start), so on a GPU the copy from the
// loader's pinned ring overlaps compute. CPU backends copy at once; the order of batches and
// their noise keys is the loader's either way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/backend.h"
#include "io/data/loader.h"

namespace distvae {

class BatchFeed {
 public:
  // images_per_epoch: N over all ranks, for the per-image noise keys epoch * N + global index.
  BatchFeed(Backend<float>& backend, Loader& loader, int batch, size_t floats_per_image,
            int64_t images_per_epoch);
  ~BatchFeed();  // waits for an upload in flight, then frees the device buffers
  BatchFeed(const BatchFeed&) = delete;
  BatchFeed& operator=(const BatchFeed&) = delete;

  // Starts the loader's epoch, passes over its first `skip` batches (a resumed run has trained on
  // them) and starts uploading the next. Returns the epoch's number of steps.
  int64_t start_epoch(int epoch, int64_t skip);

  struct Step {
    const float* x;        // (batch, floats_per_image) on the device
    const uint64_t* keys;  // (batch) noise keys
  };
  // The next step's batch, valid until the following call; starts uploading the one after.
  Step next();

 private:
  void start_upload(int buffer);

  Backend<float>& backend_;
  Loader& loader_;
  int batch_;
  size_t floats_;
  int64_t images_per_epoch_;
  float* x_[2] = {nullptr, nullptr};
  std::vector<uint64_t> keys_[2];
  int epoch_ = 0;
  int64_t steps_ = 0, taken_ = 0;  // batches of this epoch, and taken from the loader so far
  Loader::Batch pending_;          // taken from the loader, uploading into x_[pending_buffer_]
  int pending_buffer_ = 0;
  bool has_pending_ = false;
};

}  // namespace distvae
