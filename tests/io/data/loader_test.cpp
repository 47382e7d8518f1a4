// Tests for io/data/loader: the batches are exactly the plan's images (pixels encode the image
// index), preload on and off agree, the chunk cache stays within the window with one read per
// chunk, failures surface from next(), and destruction mid-epoch does not hang.
#include "io/data/loader.h"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "io/hdf5/shard_writer.h"
#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

using testing::TempDir;

// Images of 2x3x1 whose pixels encode their global index g: bytes 0..3 = g little-endian,
// byte 4 = g % 251, byte 5 = 0xA5.
constexpr int64_t kH = 2, kW = 3, kC = 1, kImage = kH * kW * kC;

void encode(int64_t g, uint8_t* px) {
  for (int b = 0; b < 4; ++b) px[b] = static_cast<uint8_t>(g >> (8 * b));
  px[4] = static_cast<uint8_t>(g % 251);
  px[5] = 0xA5;
}

// The index a decoded image (floats of the bytes) encodes, or -1 if it is not a valid encoding.
int64_t decoded_index(const float* x) {
  int64_t g = 0;
  for (int b = 0; b < 4; ++b) g |= static_cast<int64_t>(x[b]) << (8 * b);
  if (x[4] != static_cast<float>(g % 251) || x[5] != 165.0f) return -1;
  return g;
}

// Shard files of the given sizes, numbered on from `first`; returns their paths.
std::vector<std::string> write_shards(const TempDir& dir, const std::vector<int64_t>& sizes,
                                      int64_t chunk, Compression compression = Compression::gzip) {
  std::vector<std::string> paths;
  int64_t first = 0;
  for (size_t f = 0; f < sizes.size(); ++f) {
    ShardWriterOptions o;
    o.path = dir / ("shard-" + std::to_string(f) + ".h5");
    o.height = kH;
    o.width = kW;
    o.channels = kC;
    o.chunk_images = chunk;
    o.compression = compression;
    o.split = "train";
    std::vector<uint8_t> px(static_cast<size_t>(sizes[f] * kImage));
    for (int64_t i = 0; i < sizes[f]; ++i) encode(first + i, px.data() + i * kImage);
    ShardWriter w(o);
    w.append(px.data(), sizes[f]);
    w.finish();
    paths.push_back(o.path);
    first += sizes[f];
  }
  return paths;
}

// uint8 -> float, byte for byte.
void copy_decode(const uint8_t* const* images, const int64_t*, int B, float* out) {
  for (int j = 0; j < B; ++j)
    for (int64_t k = 0; k < kImage; ++k) out[j * kImage + k] = static_cast<float>(images[j][k]);
}

LoaderOptions options(int rank, int world, int batch, int window, int ring, bool preload) {
  LoaderOptions o;
  o.seed = 99;
  o.rank = rank;
  o.world = world;
  o.batch = batch;
  o.window_chunks = window;
  o.ring_batches = ring;
  o.preload = preload;
  return o;
}

// Runs one epoch, checking every batch against the plan; returns all the floats delivered.
std::vector<float> run_epoch(Loader& loader, int epoch) {
  loader.start_epoch(epoch);
  const RankPlan& plan = loader.plan();
  std::vector<float> all;
  for (int64_t s = 0; s < loader.steps(); ++s) {
    Loader::Batch b = loader.next();
    for (int j = 0; j < b.B; ++j) {
      const int64_t want = plan.order[static_cast<size_t>(s * b.B + j)];
      EXPECT_EQ(b.index[j], want) << "step " << s << " slot " << j;
      EXPECT_EQ(decoded_index(b.data + j * kImage), want) << "step " << s << " slot " << j;
    }
    all.insert(all.end(), b.data, b.data + b.B * kImage);
    loader.release(b);
  }
  EXPECT_THROW(loader.next(), std::logic_error);
  return all;
}

// Runs epoch 0 until next() throws; the message must name chunk 5 of shard-0.h5 and the failed
// Fletcher32 check (corrupt_chunk below flipped a byte of it).
void expect_chunk_5_of_shard_0_fails(Loader& loader) {
  loader.start_epoch(0);
  std::string msg;
  for (int64_t s = 0; s < loader.steps() && msg.empty(); ++s) {
    try {
      loader.release(loader.next());
    } catch (const std::runtime_error& e) {
      msg = e.what();
    }
  }
  EXPECT_NE(msg.find("shard-0.h5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("chunk 5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Fletcher32"), std::string::npos) << msg;
}

// window_chunks 0 shuffles each rank's images whole: the plan of a window of every chunk, so the
// first images used come from many 64-image blocks (a window of 3 chunks, each spanning at most 2
// blocks, would give at most 6); a window larger than the dataset means the same. Streamed, each
// chunk is still read once per epoch.
TEST(Loader, WindowZeroShufflesEachRanksImagesWhole) {
  TempDir dir;
  const auto paths = write_shards(dir, {1000, 777, 13}, 64);  // 16 + 13 + 1 = 30 chunks
  for (int world : {1, 2}) {
    for (bool preload : {false, true}) {
      SCOPED_TRACE("world " + std::to_string(world) + " preload " + std::to_string(preload));
      Loader whole(paths, options(0, world, 32, 0, 3, preload), copy_decode);
      Loader larger(paths, options(0, world, 32, 1000, 3, preload), copy_decode);
      EXPECT_EQ(whole.window_chunks(), 30);
      for (int epoch = 0; epoch < 2; ++epoch) {
        const std::vector<float> a = run_epoch(whole, epoch);
        EXPECT_EQ(whole.plan().order, plan_epoch(whole.info(), 99, epoch, 0, world, 32, 30).order);
        EXPECT_EQ(run_epoch(larger, epoch), a);
        std::set<int64_t> blocks;  // of the first 64 images used
        for (size_t p = 0; p < 64; ++p) blocks.insert(whole.plan().order[p] / 64);
        EXPECT_GE(blocks.size(), 10u) << "epoch " << epoch;
      }
      if (!preload) {
        EXPECT_EQ(whole.stats().read_chunk_calls,
                  int64_t(whole.plan().chunks.size() +
                          plan_epoch(whole.info(), 99, 0, 0, world, 32, 30).chunks.size()));
      }
    }
  }
}

TEST(Loader, DeliversThePlanWithAndWithoutPreload) {
  TempDir dir;
  const auto paths = write_shards(dir, {1000, 777, 13}, 64);
  for (int world : {1, 2, 3}) {
    for (int rank = 0; rank < world; ++rank) {
      SCOPED_TRACE("world " + std::to_string(world) + " rank " + std::to_string(rank));
      Loader streamed(paths, options(rank, world, 32, 3, 3, false), copy_decode);
      Loader preloaded(paths, options(rank, world, 32, 3, 3, true), copy_decode);
      for (int epoch = 0; epoch < 2; ++epoch) {
        const std::vector<float> a = run_epoch(streamed, epoch);
        const std::vector<float> b = run_epoch(preloaded, epoch);
        EXPECT_EQ(a, b) << "epoch " << epoch;
        EXPECT_EQ(streamed.plan().order,
                  plan_epoch(streamed.info(), 99, epoch, rank, world, 32, 3).order);
      }
      // Preload reads every chunk of the dataset once, whatever the epochs.
      EXPECT_EQ(preloaded.stats().read_chunk_calls, 16 + 13 + 1);
      EXPECT_EQ(preloaded.stats().bytes_read, 1790 * kImage);
      EXPECT_EQ(preloaded.stats().peak_cached_chunks, 0);
      EXPECT_LE(streamed.stats().peak_cached_chunks, 3);
      EXPECT_GE(streamed.wait_seconds(), 0.0);
    }
  }
}

TEST(Loader, ChunkCacheStaysWithinTheWindowAndReadsWholeChunksOnce) {
  TempDir dir;
  const auto paths = write_shards(dir, {320}, 16);  // 20 full chunks of 16
  // batch 5 does not divide a window (32 images): batches straddle windows.
  Loader loader(paths, options(0, 1, 5, 2, 2, false), copy_decode);
  int64_t chunks_used = 0;
  for (int epoch = 0; epoch < 3; ++epoch) {
    run_epoch(loader, epoch);
    EXPECT_EQ(loader.plan().chunks.size(), 20u);
    chunks_used += static_cast<int64_t>(loader.plan().chunks.size());
    const LoaderStats st = loader.stats();
    EXPECT_EQ(st.read_chunk_calls, chunks_used);
    EXPECT_EQ(st.bytes_read, chunks_used * 16 * kImage);
    EXPECT_EQ(st.peak_cached_chunks, 2);
  }
  // Two ranks, where the remainder rule leaves some chunks unread.
  const auto paths2 = write_shards(dir, {16 * 21}, 16);  // rank 0 gets 11 chunks, rank 1 gets 10
  for (int rank = 0; rank < 2; ++rank) {
    Loader l(paths2, options(rank, 2, 48, 2, 2, false), copy_decode);
    run_epoch(l, 0);
    EXPECT_EQ(l.steps(), 3);  // floor(160 / 48)
    EXPECT_EQ(l.stats().read_chunk_calls, static_cast<int64_t>(l.plan().chunks.size()));
    EXPECT_LT(l.plan().chunks.size(), 11u);
    EXPECT_LE(l.stats().peak_cached_chunks, 2);
  }
}

TEST(Loader, RestartingAnEpochAndHoldingBatches) {
  TempDir dir;
  const auto paths = write_shards(dir, {200}, 10);
  Loader loader(paths, options(0, 1, 8, 2, 3, false), copy_decode);
  EXPECT_THROW(loader.next(), std::logic_error);  // before start_epoch
  loader.start_epoch(0);
  Loader::Batch a = loader.next();
  Loader::Batch b = loader.next();
  Loader::Batch c = loader.next();
  EXPECT_THROW(loader.next(), std::logic_error);  // every ring slot is held
  loader.release(a);
  loader.release(b);
  loader.release(c);
  EXPECT_THROW(loader.release(c), std::logic_error);
  // Start the next epoch before this one is finished.
  run_epoch(loader, 1);
  run_epoch(loader, 0);
}

TEST(Loader, UsesTheAllocator) {
  TempDir dir;
  const auto paths = write_shards(dir, {100}, 10);
  int allocs = 0, frees = 0;
  size_t floats = 0;
  {
    BatchAllocator alloc{[&](size_t n) {
                           ++allocs;
                           floats = n;
                           return new float[n];
                         },
                         [&](float* p) {
                           ++frees;
                           delete[] p;
                         }};
    Loader loader(paths, options(0, 1, 4, 2, 3, false), copy_decode, alloc);
    run_epoch(loader, 0);
    run_epoch(loader, 1);
    EXPECT_EQ(allocs, 3);  // the ring, once: nothing per batch or epoch
  }
  EXPECT_EQ(frees, 3);
  EXPECT_EQ(floats, static_cast<size_t>(4 * kImage));
}

TEST(Loader, DecodeExceptionSurfacesFromNext) {
  TempDir dir;
  const auto paths = write_shards(dir, {100}, 10);
  std::atomic<int> calls{0};
  auto decode = [&](const uint8_t* const* im, const int64_t* idx, int B, float* out) {
    if (++calls == 3) throw std::runtime_error("boom in decode");
    copy_decode(im, idx, B, out);
  };
  Loader loader(paths, options(0, 1, 4, 2, 3, false), decode);
  loader.start_epoch(0);
  for (int s = 0; s < 2; ++s) loader.release(loader.next());
  testing::expect_error([&] { loader.next(); },
                        {"boom in decode", "batch 2", "epoch 0", "shard-0.h5"});
  EXPECT_THROW(loader.next(), std::runtime_error);  // stays failed for the epoch
  // A new epoch starts clean.
  calls = 100;
  run_epoch(loader, 1);
}

// Flips a byte in the middle of chunk `chunk` of /images in `path`, found through HDF5's chunk
// index, so its Fletcher32 checksum fails on read.
void corrupt_chunk(const std::string& path, int64_t chunk, int64_t chunk_images) {
  haddr_t addr = 0;
  hsize_t size = 0;
  {
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "images", H5P_DEFAULT);
    const hsize_t offset[4] = {static_cast<hsize_t>(chunk * chunk_images), 0, 0, 0};
    unsigned mask = 0;
    ASSERT_GE(H5Dget_chunk_info_by_coord(d, offset, &mask, &addr, &size), 0);
    H5Dclose(d);
    H5Fclose(f);
  }
  std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
  io.seekg(static_cast<std::streamoff>(addr + size / 2));
  char byte = 0;
  io.read(&byte, 1);
  byte = static_cast<char>(byte ^ 0x5A);
  io.seekp(static_cast<std::streamoff>(addr + size / 2));
  io.write(&byte, 1);
  ASSERT_TRUE(io.good());
}

TEST(Loader, ReadErrorSurfacesFromNextWithTheFileName) {
  TempDir dir;
  const auto paths = write_shards(dir, {40, 40}, 10, Compression::none);
  corrupt_chunk(paths[1], 2, 10);
  for (bool preload : {false, true}) {
    Loader loader(paths, options(0, 1, 4, 2, 2, preload), copy_decode);
    loader.start_epoch(0);
    bool failed = false;
    for (int64_t s = 0; s < loader.steps() && !failed; ++s) {
      try {
        loader.release(loader.next());
      } catch (const std::runtime_error& e) {
        failed = true;
        const std::string msg = e.what();
        EXPECT_NE(msg.find("shard-1.h5"), std::string::npos) << msg;
        EXPECT_NE(msg.find("chunk 2"), std::string::npos) << msg;
      }
    }
    EXPECT_TRUE(failed) << "preload " << preload;
  }
}

TEST(Loader, ErrorsFromConstructionAndPlan) {
  TempDir dir;
  testing::expect_error(
      [&] { Loader l({dir / "missing.h5"}, options(0, 1, 4, 2, 2, false), copy_decode); },
      {"missing.h5", "no such file"});
  const auto paths = write_shards(dir, {50}, 10);  // 5 chunks
  Loader loader(paths, options(0, 8, 4, 2, 2, false), copy_decode);
  testing::expect_error([&] { loader.start_epoch(0); },
                        {"world size 8 is larger than the 5 chunks of the dataset"});
  testing::expect_error([&] { Loader l(paths, options(0, 1, 4, 2, 0, false), copy_decode); },
                        {"ring_batches"});
}

TEST(Loader, DestroyingMidEpochDoesNotHang) {
  TempDir dir;
  const auto paths = write_shards(dir, {400}, 10);
  auto slow = [](const uint8_t* const* im, const int64_t* idx, int B, float* out) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    copy_decode(im, idx, B, out);
  };
  const auto t0 = std::chrono::steady_clock::now();
  for (bool preload : {false, true}) {
    { Loader l(paths, options(0, 1, 4, 2, 2, preload), slow); }  // never started
    {
      Loader l(paths, options(0, 1, 4, 2, 2, preload), slow);
      l.start_epoch(0);  // destroyed at once, mid-read or mid-decode
    }
    {
      Loader l(paths, options(0, 1, 4, 2, 2, preload), slow);
      l.start_epoch(0);
      Loader::Batch b = l.next();  // held, never released: the thread waits for a free slot
      (void)b;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    {
      Loader l(paths, options(0, 1, 4, 2, 2, preload), slow);
      l.start_epoch(0);
      for (int s = 0; s < 5; ++s) l.release(l.next());
    }
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30.0);
}

}  // namespace
}  // namespace distvae

namespace distvae {
namespace {

TEST(Loader, DecompressionThreadsDeliverTheSameBatches) {
  TempDir dir;
  for (Compression comp : {Compression::gzip, Compression::none}) {
    const auto paths = write_shards(dir, {500, 333, 7}, 16, comp);
    Loader reference(paths, options(0, 1, 24, 4, 2, true), copy_decode);
    std::vector<std::vector<float>> want;
    for (int epoch = 0; epoch < 2; ++epoch) want.push_back(run_epoch(reference, epoch));
    for (int threads : {1, 2, 4}) {
      LoaderOptions o = options(0, 1, 24, 4, 2, false);
      o.threads = threads;
      Loader loader(paths, o, copy_decode);
      int64_t chunks = 0;
      for (int epoch = 0; epoch < 2; ++epoch) {
        EXPECT_EQ(run_epoch(loader, epoch), want[size_t(epoch)]) << threads << " threads";
        chunks += static_cast<int64_t>(loader.plan().chunks.size());
      }
      EXPECT_EQ(loader.stats().read_chunk_calls, chunks);  // each chunk read once per epoch
      EXPECT_LE(loader.stats().peak_cached_chunks, 4);
    }
  }
}

TEST(Loader, ACorruptGzipChunkDecodedByHelpersNamesTheFileAndChunk) {
  TempDir dir;
  const auto paths = write_shards(dir, {64, 64}, 8);
  corrupt_chunk(paths[0], 5, 8);
  LoaderOptions o = options(0, 1, 4, 4, 2, false);
  o.threads = 3;
  Loader loader(paths, o, copy_decode);
  expect_chunk_5_of_shard_0_fails(loader);
  o.threads = 0;
  testing::expect_error([&] { Loader l(paths, o, copy_decode); }, {"threads", "0"});
}

}  // namespace
}  // namespace distvae

// ---- decoding on the caller (LoaderOptions::decode_on_consumer) ----

namespace distvae {
namespace {

thread_local bool in_caller_loop = false;  // set on the threads of CallerLoop's loops

// A parallel_for on the caller's thread and `helpers` threads of its own (each loop starts them
// anew: simple, and the test is about which threads run the work), counting its loops.
struct CallerLoop {
  int helpers = 2;
  std::atomic<int> loops{0};
  void operator()(int64_t n, const std::function<void(int64_t)>& fn) {
    ++loops;
    std::atomic<int64_t> next{0};
    std::exception_ptr first;
    std::mutex mu;
    auto work = [&] {
      in_caller_loop = true;
      for (int64_t i; (i = next++) < n;) {
        try {
          fn(i);
        } catch (...) {
          std::lock_guard<std::mutex> lk(mu);
          if (!first) first = std::current_exception();
        }
      }
      in_caller_loop = false;
    };
    std::vector<std::thread> threads;
    for (int h = 0; h < helpers; ++h) threads.emplace_back(work);
    work();
    for (std::thread& t : threads) t.join();
    if (first) std::rethrow_exception(first);
  }
};

LoaderOptions on_caller(LoaderOptions o, CallerLoop& loop) {
  o.decode_on_consumer = [&loop](int64_t n, const std::function<void(int64_t)>& fn) {
    loop(n, fn);
  };
  return o;
}

TEST(Loader, DecodingOnTheCallerDeliversTheSameBatchesAndLeavesTheLoaderThreadOnlyReading) {
  TempDir dir;
  std::atomic<int> decodes_elsewhere{0};
  auto decode = [&](const uint8_t* const* im, const int64_t* idx, int B, float* out) {
    if (!in_caller_loop) ++decodes_elsewhere;
    copy_decode(im, idx, B, out);
  };
  for (Compression comp : {Compression::gzip, Compression::none}) {
    // Batches of 24 straddle the windows of 4 chunks of 16, and the ring of 2 makes the loader
    // reuse cache slots while earlier batches still wait to be decoded.
    const auto paths = write_shards(dir, {500, 333, 7}, 16, comp);
    Loader reference(paths, options(0, 1, 24, 4, 2, true), copy_decode);
    std::vector<std::vector<float>> want;
    for (int epoch = 0; epoch < 2; ++epoch) want.push_back(run_epoch(reference, epoch));
    for (bool preload : {false, true}) {
      SCOPED_TRACE("preload " + std::to_string(preload));
      CallerLoop loop;
      Loader loader(paths, on_caller(options(0, 1, 24, 4, 2, preload), loop), decode);
      int64_t steps = 0;
      for (int epoch = 0; epoch < 2; ++epoch) {
        EXPECT_EQ(run_epoch(loader, epoch), want[size_t(epoch)]);
        steps += loader.steps();
      }
      EXPECT_EQ(decodes_elsewhere.load(), 0);
      EXPECT_GT(loader.decode_seconds(), 0.0);
      // One loop per batch decodes it; streamed, the windows' decompression adds loops.
      if (preload)
        EXPECT_EQ(loop.loops.load(), steps);
      else
        EXPECT_GT(loop.loops.load(), steps);
    }
  }
}

TEST(Loader, DecodingOnTheCallerReportsDecodeAndChunkErrorsFromNext) {
  TempDir dir;
  const auto paths = write_shards(dir, {64, 64}, 8);
  std::atomic<int> calls{0};
  auto decode = [&](const uint8_t* const* im, const int64_t* idx, int B, float* out) {
    if (++calls == 3) throw std::runtime_error("boom in decode");
    copy_decode(im, idx, B, out);
  };
  CallerLoop loop;
  {
    Loader loader(paths, on_caller(options(0, 1, 4, 2, 3, false), loop), decode);
    loader.start_epoch(0);
    for (int s = 0; s < 2; ++s) loader.release(loader.next());
    testing::expect_error([&] { loader.next(); }, {"boom in decode", "batch 2", "epoch 0"});
    testing::expect_error([&] { loader.next(); }, {"boom in decode", "batch 2"});  // stays failed
    calls = 100;
    run_epoch(loader, 1);  // the failed batch's slot went back to the ring
  }
  corrupt_chunk(paths[0], 5, 8);
  Loader loader(paths, on_caller(options(0, 1, 4, 4, 2, false), loop), copy_decode);
  expect_chunk_5_of_shard_0_fails(loader);
}

TEST(Loader, DecodingOnTheCallerRestartsAndStopsWithWorkNobodyTook) {
  TempDir dir;
  const auto paths = write_shards(dir, {400}, 10);
  CallerLoop loop;
  const auto t0 = std::chrono::steady_clock::now();
  {
    Loader l(paths, on_caller(options(0, 1, 4, 2, 2, false), loop), copy_decode);
    l.start_epoch(0);  // the loader hands the first window over and waits for next()
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    run_epoch(l, 1);  // start_epoch takes the hand-off back
    l.start_epoch(0);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }  // destroyed with a hand-off posted
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30.0);
}

}  // namespace
}  // namespace distvae
