// Loader throughput alone: one epoch of decoded (binarized) batches from HDF5 shards, streamed
// (preload off) with the files evicted from the page cache first, and preloaded.
//   build/bench/loader_bench 'data/fmnist-train-*.h5' [batch] [ranks-to-simulate]
// Prints images/s and MB/s (uncompressed image bytes) per rank. Compare gzip and uncompressed
// shards by converting twice (distvae convert idx --compress gzip|none).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench/page_cache.h"
#include "io/data/dataset.h"
#include "io/data/image_batch.h"
#include "io/data/loader.h"

using namespace distvae;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s 'shards-glob' [batch] [world]\n", argv[0]);
    return 2;
  }
  const std::vector<std::string> files = expand_glob(argv[1]);
  const int batch = argc > 2 ? std::atoi(argv[2]) : 128;
  const int world = argc > 3 ? std::atoi(argv[3]) : 1;
  for (bool preload : {false, true}) {
    for (const auto& f : files) evict_from_page_cache(f);
    LoaderOptions o;
    o.seed = 1, o.rank = 0, o.world = world, o.batch = batch, o.preload = preload;
    ImageGeom g;
    std::vector<uint64_t> key(static_cast<size_t>(batch));
    const auto t0 = std::chrono::steady_clock::now();
    Loader loader(files, o, [&](const uint8_t* const* im, const int64_t* idx, int n, float* out) {
      for (int b = 0; b < n; ++b) key[size_t(b)] = uint64_t(idx[b]);
      decode_images(im, g, key.data(), n, 1, out);
    });
    g = ImageGeom{loader.info().height, loader.info().width, loader.info().channels};
    loader.start_epoch(0);
    int64_t images = 0;
    for (int64_t s = 0; s < loader.steps(); ++s) {
      const Loader::Batch b = loader.next();
      images += b.B;
      loader.release(b);
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double mb = double(images) * double(g.pixels()) / 1e6;
    std::printf(
        "%-9s rank 0 of %d: %lld images in %.3f s = %.0f images/s, %.1f MB/s decoded "
        "(%lld chunk reads)\n",
        preload ? "preload" : "streamed", world, (long long)images, secs, images / secs, mb / secs,
        (long long)loader.stats().read_chunk_calls);
  }
  return 0;
}
