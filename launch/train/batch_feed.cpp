// The training step's batches on the device, one ahead (see launch/train/batch_feed.h).
#include "launch/train/batch_feed.h"

#include <cstdio>
#include <exception>
#include <stdexcept>

namespace distvae {

BatchFeed::BatchFeed(Backend<float>& backend, Loader& loader, int batch, size_t floats_per_image,
                     int64_t images_per_epoch)
    : backend_(backend),
      loader_(loader),
      batch_(batch),
      floats_(floats_per_image),
      images_per_epoch_(images_per_epoch) {
  for (int i = 0; i < 2; ++i) {
    x_[i] = backend_.alloc(size_t(batch) * floats_per_image);
    keys_[i].resize(size_t(batch));
  }
}

BatchFeed::~BatchFeed() {
  try {
    backend_.upload_wait();  // the copy engine may still be writing x_
    if (has_pending_) loader_.release(pending_);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "distvae: warning: finishing the last batch upload: %s\n", e.what());
  }
  for (float* x : x_) backend_.release(x);
}

void BatchFeed::start_upload(int buffer) {
  pending_ = loader_.next();
  for (int b = 0; b < batch_; ++b)
    keys_[buffer][size_t(b)] =
        uint64_t(epoch_) * uint64_t(images_per_epoch_) + uint64_t(pending_.index[b]);
  backend_.upload_start(pending_.data, x_[buffer], size_t(batch_) * floats_);
  pending_buffer_ = buffer, has_pending_ = true;
  ++taken_;
}

int64_t BatchFeed::start_epoch(int epoch, int64_t skip) {
  if (has_pending_) {  // an epoch left unfinished
    backend_.upload_wait();
    loader_.release(pending_);
    has_pending_ = false;
  }
  loader_.start_epoch(epoch);
  epoch_ = epoch, steps_ = loader_.steps(), taken_ = 0;
  for (; taken_ < skip && taken_ < steps_; ++taken_) loader_.release(loader_.next());
  if (taken_ < steps_) start_upload(0);
  return steps_;
}

BatchFeed::Step BatchFeed::next() {
  if (!has_pending_) throw std::logic_error("BatchFeed::next past the epoch's last step");
  backend_.upload_wait();
  loader_.release(pending_);
  has_pending_ = false;
  const int current = pending_buffer_;
  if (taken_ < steps_) start_upload(1 - current);
  return {x_[current], keys_[current].data()};
}

}  // namespace distvae
