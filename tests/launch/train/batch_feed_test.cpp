// Tests for launch/train/batch_feed: the step sees exactly the loader's batches and noise keys, in
// the loader's order, across epochs and a resumed (skipped) start, also when the backend's upload
// is truly asynchronous (a backend that copies only in upload_wait, as a GPU's copy engine may).
#include "launch/train/batch_feed.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "core/backends/reference.h"
#include "io/hdf5/shard_writer.h"
#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

constexpr int kH = 2, kW = 2, kImage = kH * kW;  // pixel k of image g is (g + 3k) % 256

std::vector<std::string> write_shard(const testing::TempDir& dir, int64_t images) {
  ShardWriterOptions o;
  o.path = dir / "feed.h5";
  o.height = kH, o.width = kW, o.channels = 1;
  o.chunk_images = 16;
  o.split = "train";
  std::vector<uint8_t> px(size_t(images * kImage));
  for (int64_t g = 0; g < images; ++g)
    for (int k = 0; k < kImage; ++k) px[size_t(g * kImage + k)] = uint8_t((g + 3 * k) % 256);
  ShardWriter w(o);
  w.append(px.data(), images);
  w.finish();
  return {o.path};
}

void copy_decode(const uint8_t* const* images, const int64_t*, int B, float* out) {
  for (int j = 0; j < B; ++j)
    for (int k = 0; k < kImage; ++k) out[j * kImage + k] = float(images[j][k]);
}

LoaderOptions options(int batch) {
  LoaderOptions o;
  o.seed = 5, o.batch = batch, o.window_chunks = 2, o.ring_batches = 3;
  return o;
}

// Copies only when upload_wait is called, from wherever the host buffer then is: a feed that
// reads the device buffer before waiting, or gives the host batch back to the loader too early,
// sees stale or foreign pixels.
class DeferredUploadBackend final : public ReferenceBackend<float> {
 public:
  void upload_start(const float* host, float* dev, size_t n) override {
    ASSERT_EQ(host_, nullptr) << "a second upload started before the first was waited for";
    host_ = host, dev_ = dev, n_ = n;
    ++uploads;
  }
  void upload_wait() override {
    // A slow copy: a host batch given back before this returns is refilled by the loader first.
    if (host_) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (host_) copy(host_, dev_, n_);
    host_ = nullptr;
  }
  int uploads = 0;

 private:
  const float* host_ = nullptr;
  float* dev_ = nullptr;
  size_t n_ = 0;
};

struct Expected {
  std::vector<float> x;
  std::vector<uint64_t> keys;
};

// The batches of an epoch straight from a second loader, with keys epoch * N + global index.
std::vector<Expected> direct_epoch(Loader& loader, int epoch, int64_t skip) {
  loader.start_epoch(epoch);
  std::vector<Expected> out;
  for (int64_t s = 0; s < loader.steps(); ++s) {
    const Loader::Batch b = loader.next();
    if (s >= skip) {
      Expected e;
      e.x.assign(b.data, b.data + size_t(b.B) * kImage);
      for (int j = 0; j < b.B; ++j)
        e.keys.push_back(uint64_t(epoch) * uint64_t(loader.info().count) + uint64_t(b.index[j]));
      out.push_back(std::move(e));
    }
    loader.release(b);
  }
  return out;
}

void expect_feed_matches_loader(Backend<float>& be) {
  testing::TempDir dir;
  const auto paths = write_shard(dir, 203);
  const int B = 8;
  Loader fed(paths, options(B), copy_decode), direct(paths, options(B), copy_decode);
  const int64_t N = fed.info().count;
  BatchFeed feed(be, fed, B, kImage, N);
  for (int epoch = 0; epoch < 3; ++epoch) {
    const int64_t skip = epoch == 0 ? 5 : 0;  // epoch 0 resumes after 5 steps
    const int64_t steps = feed.start_epoch(epoch, skip);
    const std::vector<Expected> want = direct_epoch(direct, epoch, skip);
    ASSERT_EQ(steps, direct.steps());
    ASSERT_EQ(size_t(steps - skip), want.size());
    std::vector<float> got(size_t(B) * kImage);
    for (size_t s = 0; s < want.size(); ++s) {
      const BatchFeed::Step in = feed.next();
      be.to_host(in.x, got.data(), got.size());
      EXPECT_EQ(got, want[s].x) << "epoch " << epoch << " step " << s;
      EXPECT_EQ(std::vector<uint64_t>(in.keys, in.keys + B), want[s].keys)
          << "epoch " << epoch << " step " << s;
    }
    EXPECT_THROW(feed.next(), std::logic_error);
  }
}

TEST(BatchFeed, DeliversTheLoadersBatchesAndKeys) {
  ReferenceBackend<float> be;
  expect_feed_matches_loader(be);
}

TEST(BatchFeed, WaitsForAnAsynchronousUploadBeforeUseAndBeforeReleasingTheHostBatch) {
  DeferredUploadBackend be;
  expect_feed_matches_loader(be);
  EXPECT_EQ(be.uploads, (25 - 5) + 25 + 25);  // 203 / 8 = 25 steps per epoch, minus the skipped
}

TEST(BatchFeed, AnEpochLeftUnfinishedIsDroppedCleanly) {
  testing::TempDir dir;
  const auto paths = write_shard(dir, 100);
  DeferredUploadBackend be;
  Loader loader(paths, options(10), copy_decode), direct(paths, options(10), copy_decode);
  BatchFeed feed(be, loader, 10, kImage, 100);
  feed.start_epoch(0, 0);
  feed.next();  // one step, then a new epoch starts (as after an interrupted one)
  feed.start_epoch(1, 0);
  const std::vector<Expected> want = direct_epoch(direct, 1, 0);
  std::vector<float> got(10 * kImage);
  be.to_host(feed.next().x, got.data(), got.size());
  EXPECT_EQ(got, want[0].x);
}

}  // namespace
}  // namespace distvae
