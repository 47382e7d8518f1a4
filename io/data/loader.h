// The prefetching data loader: one background thread per rank reads whole chunks in shard-plan
// order, decodes images into float batches and keeps a ring of ready batches ahead of compute.
//
// Thread model. The Loader owns one thread. It opens the HDF5 files, makes every HDF5 call
// (serial HDF5: nothing else may touch HDF5 while a Loader exists) and runs `decode` (unless
// decode_on_consumer hands it to next(): see below). The caller thread computes the plan
// (io/data/shard_plan.h) in start_epoch and takes batches with next(). Decompression can be spread
// over more threads (options.threads): the loader thread reads each chunk as stored (H5Dread_chunk,
// no decoding) and the chunks' Fletcher32 / deflate / shuffle filters are undone in our own code
// (io/data/chunk_codec.h) by the loader thread and threads - 1 helpers. When the loader needs a
// chunk it loads that chunk and the rest of its shuffle window together, so the window's chunks
// decompress in parallel. Files with other filters (LZF) are read through HDF5 on the loader thread
// alone.
//
// Decoding on the caller (options.decode_on_consumer set). When the rank's compute threads fill
// its cores, work on the loader thread preempts one compute thread while the others wait for it
// at their next barrier, so each ms of it costs up to threads ms of compute. With this option the
// loader thread only reads and copies: it hands each window's decompression to the caller, which
// runs it inside next() with decode_on_consumer (over its compute threads), and copies each
// batch's images into its ring slot, which next() decodes into floats the same way. The numbers
// are the same either way; only the thread doing the work changes.
//
// Memory. Everything is allocated at construction or start_epoch, nothing per batch:
//   - a ring of `ring_batches` float batches (batch * floats_per_image floats each, from the
//     BatchAllocator, e.g. pinned host memory on GPU builds) with their index arrays;
//   - a chunk cache of `window_chunks` slots of one decompressed chunk each (preload off), or the
//     whole dataset as uint8 (preload on, read once at the first epoch, still chunk by chunk);
//   - per cache slot, the chunk as stored (compressed) while it is decoded, and a scratch buffer;
//   - no HDF5 raw-chunk cache (the files are opened with it set to 0 bytes), so nothing of the
//     above grows with the number of files or images: streaming memory is the ring plus
//     window_chunks x (decompressed + compressed chunk), whatever the dataset's size;
//   - with decode_on_consumer, per ring slot one batch of uint8 images (preload off);
//   - a staging area of one batch of uint8 images: when a chunk slot is reused while the batch
//     being assembled still points into it (a batch straddling two windows), those images are
//     copied there first, so the cache never holds more than `window_chunks` chunks.
// Each chunk of the plan is read exactly once per epoch with one read_chunk call: the plan uses
// a chunk's images only inside its window, and a slot is reused only once its chunk has no
// further use this epoch.
//
// Usage:
//   Loader loader(paths, opts, decode, allocator);
//   for (int e = 0; e < epochs; ++e) {
//     loader.start_epoch(e);
//     for (int64_t s = 0; s < loader.steps(); ++s) {
//       Loader::Batch b = loader.next();  // blocks until ready
//       ... use b.data (B, floats_per_image), b.index (B) ...
//       loader.release(b);                // the slot goes back to the ring
//     }
//   }
// A caller may hold up to ring_batches - 1 batches at once; next() throws if asked for a batch
// whose slot the caller still holds. start_epoch invalidates every batch of the previous epoch
// (and cancels its production if unfinished).
//
// Errors. Failures on the loader thread (a corrupt chunk, an exception thrown by decode) are
// captured and rethrown from next() as std::runtime_error naming the file and chunk; the loader
// stops producing for that epoch. Errors opening the files are thrown by the constructor.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "io/data/dataset.h"
#include "io/data/shard_plan.h"
#include "io/data/worker_pool.h"

namespace distvae {

// Turns B images into floats, on the loader thread (in next() with decode_on_consumer). images[j]
// points at image j, uint8 (H, W, C); global_index[j] is its global image index (for per-image
// random draws); out: (B, floats_per_image). The pointers are valid only during the call.
using DecodeFn = std::function<void(const uint8_t* const* images, const int64_t* global_index,
                                    int B, float* out)>;

// Runs fn(i) for every i in [0, n), possibly on several threads at once, and returns when all
// are done, rethrowing an exception thrown by fn.
using ParallelFor = std::function<void(int64_t n, const std::function<void(int64_t)>& fn)>;

// Where ring buffers come from. Empty functions mean new[] / delete[].
struct BatchAllocator {
  std::function<float*(size_t)> alloc;  // argument: number of floats
  std::function<void(float*)> free;
};

struct LoaderOptions {
  uint64_t seed = 0;
  int rank = 0, world = 1;
  int batch = 1;                 // images per batch on this rank
  int window_chunks = 4;         // chunks shuffled together (0: all); also the chunk cache size
  int ring_batches = 3;          // ready batches buffered ahead of compute (>= 1)
  int threads = 1;               // threads decompressing chunks: the loader's own + threads - 1
  bool preload = false;          // hold the whole dataset in memory, read once
  int64_t floats_per_image = 0;  // floats decode writes per image; 0 means H * W * C
  int64_t max_images = 0;        // use only the first images (see first_images); 0: all
  // When set, decompression and decode run on the thread calling next(), through this function
  // (see "Decoding on the caller" above); decode must then accept disjoint parts of a batch
  // concurrently. Empty: both run on the loader thread (and its helpers).
  ParallelFor decode_on_consumer;
};

// Counters for tests and benchmarks, cumulative since construction.
struct LoaderStats {
  int64_t read_chunk_calls = 0;    // Hdf5Dataset::read_chunk calls
  int64_t bytes_read = 0;          // image bytes those calls returned
  int64_t stored_bytes_read = 0;   // bytes as stored (compressed) of the chunks read raw
  int64_t peak_cached_chunks = 0;  // most chunk-cache slots in use at once (preload: 0)
};

class Loader {
 public:
  struct Batch {
    const float* data = nullptr;     // (B, floats_per_image)
    const int64_t* index = nullptr;  // (B): the global image indices, in plan order
    int B = 0;
    int slot = -1;  // ring slot, for release()
  };

  // Starts the loader thread, which opens `paths` (in this order) and, with preload, reads the
  // dataset. Throws what opening the files throws, and on bad options.
  Loader(std::vector<std::string> paths, LoaderOptions options, DecodeFn decode,
         BatchAllocator allocator = {});
  // Stops the thread (mid-epoch too: production is cancelled, not finished) and frees the ring.
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Computes the plan of `epoch` (throws what plan_epoch throws) and starts producing its batches.
  void start_epoch(int epoch);
  int64_t steps() const { return plan_.steps; }
  const RankPlan& plan() const { return plan_; }
  const DatasetInfo& info() const { return info_; }
  int window_chunks() const { return window_; }  // in use: options.window_chunks, at most all

  // The next batch of the epoch, blocking until it is ready. Rethrows a loader-thread failure.
  // Throws std::logic_error past the epoch's last step or before start_epoch.
  Batch next();
  // Gives the batch's slot back to the ring.
  void release(const Batch& batch);

  // Seconds next() spent blocked waiting for batches, cumulative since construction.
  double wait_seconds() const { return wait_seconds_; }
  // Seconds next() spent decompressing and decoding (decode_on_consumer), cumulative.
  double decode_seconds() const { return decode_seconds_; }
  LoaderStats stats() const;

 private:
  enum class SlotState { free, ready, held };
  struct Slot {
    float* data = nullptr;
    std::vector<int64_t> index;
    SlotState state = SlotState::free;
    // decode_on_consumer: the batch's images for next() to decode, and (preload off) their
    // copies, out of the chunk cache whose slots the loader reuses meanwhile.
    std::vector<const uint8_t*> images;
    std::vector<uint8_t> bytes;
  };
  // decode_on_consumer: work the loader thread hands to the caller, one piece at a time.
  enum class Handoff { none, posted, running };

  void shutdown() noexcept;  // stops and joins the thread, frees the ring
  void run();                // the thread's body
  void produce_epoch();      // the current epoch's batches; returns early on cancel or stop
  void preload_all();        // leaves preload_done_ false if cancelled
  // Image order[pos], put at position j of the batch being assembled: the preloaded copy, or a
  // cache slot (reading its chunk into a slot first if needed).
  const uint8_t* image_ptr(int64_t pos, int j);
  // Loads plan chunk k, and the other chunks of its window still to be read while free slots
  // last, into the cache; images 0..j-1 of the batch being assembled stay valid (staged when
  // their slot is reused).
  void load_chunks(int64_t pos, int j, int32_t k);
  std::string chunk_context(const ChunkRef& c) const;
  bool cancelled();  // locks mu_
  [[noreturn]] void fail_chunk(const ChunkRef& c, const std::exception& e) const;
  // The error for a decode failure of batch b, naming the files its images come from.
  std::runtime_error decode_failure(int64_t b, const std::exception& e) const;
  // On the loader thread: fn over [0, n) on the helpers, or handed to the caller's next() and
  // waited for (throws if the epoch is cancelled before the caller takes it).
  void parallel_decode(int64_t n, const std::function<void(int64_t)>& fn);
  // In next(), with mu_ held by lk: runs the posted hand-off.
  void run_handoff(std::unique_lock<std::mutex>& lk);
  // In next(): decodes the batch of slot into floats, in parts over decode_on_consumer.
  void decode_slot(Slot& slot, int64_t b);

  // Fixed at construction.
  std::vector<std::string> paths_;
  LoaderOptions opt_;
  DecodeFn decode_;
  BatchAllocator allocator_;
  DatasetInfo info_;
  int64_t image_bytes_ = 0, floats_per_image_ = 0, max_chunk_images_ = 0;
  int window_ = 1;  // chunks shuffled together: options.window_chunks, at most all of them

  // Loader thread only (HDF5 and the cache).
  std::unique_ptr<Hdf5Dataset> dataset_;
  std::unique_ptr<WorkerPool> pool_;           // threads - 1 decompression helpers
  std::vector<bool> decodable_;                // per file: chunk_codec handles its filters
  std::vector<std::vector<uint8_t>> raw_;      // per cache slot: the chunk as stored
  std::vector<std::vector<uint8_t>> scratch_;  // per cache slot: decode_chunk's scratch
  std::vector<uint32_t> raw_mask_;             // per cache slot: skipped-filter mask
  std::vector<int32_t> load_free_;             // load_chunks' work lists, reserved up front
  std::vector<std::pair<int32_t, int32_t>> load_list_;
  std::vector<size_t> load_decode_;
  std::vector<uint8_t> preloaded_;  // (count, H, W, C) with preload
  bool preload_done_ = false;
  std::vector<uint8_t> cache_;        // (window_chunks, max_chunk_images, H, W, C)
  std::vector<int64_t> slot_chunk_;   // cache slot -> plan chunk (or -1)
  std::vector<uint8_t> staging_;      // (batch, H, W, C)
  std::vector<const uint8_t*> ptrs_;  // (batch): images of the batch being assembled
  std::vector<int> ptr_slot_;         // (batch): the cache slot each points into (or -1)
  int64_t cached_ = 0;                // cache slots holding a chunk

  // Per epoch, written by start_epoch while the thread is idle, then read-only.
  RankPlan plan_;
  int epoch_ = 0;
  std::vector<int32_t> pos_chunk_;   // order position -> index into plan_.chunks
  std::vector<int64_t> last_use_;    // plan chunk -> last order position using it
  std::vector<int32_t> chunk_slot_;  // plan chunk -> cache slot (or -1); loader thread only

  // Shared, under mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_work_;  // to the thread: new epoch, free slot, stop
  std::condition_variable cv_done_;  // to the caller: batch ready, idle, opened, error
  std::vector<Slot> ring_;
  int64_t gen_ = 0;  // bumped by start_epoch; the thread produces epoch gen_
  int64_t produced_ = 0, consumed_ = 0;
  bool busy_ = false;  // the thread is producing an epoch
  bool stop_ = false;
  bool cancel_ = false;   // start_epoch asks the thread to drop the current epoch
  bool started_ = false;  // start_epoch has been called
  bool opened_ = false;
  std::exception_ptr error_;  // a failure of the current epoch (or of opening)
  double wait_seconds_ = 0;
  Handoff handoff_ = Handoff::none;
  const std::function<void(int64_t)>* handoff_fn_ = nullptr;
  int64_t handoff_n_ = 0;
  std::exception_ptr handoff_error_;
  double decode_seconds_ = 0;        // the caller's thread only
  std::exception_ptr decode_error_;  // the caller's thread only: a failed decode_slot this epoch
  std::atomic<int64_t> read_calls_{0}, bytes_read_{0}, stored_bytes_{0}, peak_cached_{0};

  std::thread thread_;
};

}  // namespace distvae
