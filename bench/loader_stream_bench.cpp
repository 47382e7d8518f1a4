// The loader alone on large data: one epoch (or --steps batches) of decoded batches streamed from
// HDF5 shards, files evicted from the page cache first, with N decompression threads; or
// preloaded. One configuration per process, so the peak RSS it prints is that configuration's.
//   build/bench/loader_stream_bench 'data/sprites-train-*.h5' [--batch 64] [--threads 1]
//       [--preload] [--max-images N] [--steps N] [--rank R --world W] [--no-evict]
// Prints per rank: images/s, MB/s of decoded image bytes, MB/s read from disk (as stored),
// chunk reads, the chunk-cache peak and the process's peak RSS.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench/page_cache.h"
#include "io/data/dataset.h"
#include "io/data/image_batch.h"
#include "io/data/loader.h"

using namespace distvae;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: %s 'shards-glob' [--batch B] [--threads T] [--preload] [--max-images N] "
                 "[--steps N] [--rank R --world W] [--no-evict]\n",
                 argv[0]);
    return 2;
  }
  LoaderOptions o;
  o.seed = 1, o.batch = 64;
  int64_t max_steps = 0;
  bool do_evict = true;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoll(argv[++i]) : 0; };
    if (a == "--batch")
      o.batch = int(next());
    else if (a == "--threads")
      o.threads = int(next());
    else if (a == "--preload")
      o.preload = true;
    else if (a == "--max-images")
      o.max_images = next();
    else if (a == "--steps")
      max_steps = next();
    else if (a == "--rank")
      o.rank = int(next());
    else if (a == "--world")
      o.world = int(next());
    else if (a == "--no-evict")
      do_evict = false;
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  const std::vector<std::string> files = expand_glob(argv[1]);
  if (do_evict)
    for (const auto& f : files) evict_from_page_cache(f);
  ImageGeom g;
  std::vector<uint64_t> key(static_cast<size_t>(o.batch));
  const auto t0 = std::chrono::steady_clock::now();
  Loader loader(files, o, [&](const uint8_t* const* im, const int64_t* idx, int n, float* out) {
    for (int b = 0; b < n; ++b) key[size_t(b)] = uint64_t(idx[b]);
    decode_images(im, g, key.data(), n, -1, out);  // uint8 -> float in [0, 1], no binarization
  });
  g = ImageGeom{loader.info().height, loader.info().width, loader.info().channels};
  loader.start_epoch(0);
  const int64_t steps = max_steps > 0 ? std::min(max_steps, loader.steps()) : loader.steps();
  int64_t images = 0;
  for (int64_t s = 0; s < steps; ++s) {
    const Loader::Batch b = loader.next();
    images += b.B;
    loader.release(b);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const LoaderStats st = loader.stats();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double mb = double(images) * double(g.pixels()) / 1e6;
  std::printf(
      "%s threads %d, rank %d of %d, dataset %lld images in %zu file(s): %lld images in "
      "%.2f s = %.0f images/s, %.1f MB/s decoded, %.1f MB/s read as stored, %lld chunk "
      "reads, chunk cache peak %lld, peak RSS %.1f MB\n",
      o.preload ? "preload " : "streamed", o.threads, o.rank, o.world,
      (long long)loader.info().count, files.size(), (long long)images, secs, double(images) / secs,
      mb / secs, double(st.stored_bytes_read) / 1e6 / secs, (long long)st.read_chunk_calls,
      (long long)st.peak_cached_chunks, double(ru.ru_maxrss) / 1024.0);
  return 0;
}
