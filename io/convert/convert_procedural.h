// Writing a procedural dataset (the dSprites-style sprites of io/convert/sprites.h) to HDF5 shards,
// with its ground-truth factors: parallel, resumable, and split among MPI ranks by whole shards.
//
// Each shard holds, besides `images` and `labels` (the shape):
//   /factors         float32 [N, F]  factor values (io/convert/sprites.h), one row per image
//   /factor_classes  int32 [N, F]    the same as class indices
//   /grid_index      int32 [N, 1]    the image's index in the dSprites grid order
//   attributes factor_names ("shape,scale,..."), factor_sizes ("3,6,40,32,32"), convert_key,
//   pixel_sum, generator ("sprites v1 rgb=0 seed=1 order=shuffled").
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "io/convert/convert_idx.h"
#include "io/convert/shard_tasks.h"

namespace distvae {

struct ConvertProceduralOptions {
  std::string kind = "sprites";  // the only kind so far
  bool rgb = false;              // the colour / background variant
  std::string out_dir;
  std::string prefix;  // default "sprites" or "sprites_rgb"
  // Image order in the files. shuffled (default): a fixed permutation of the grid drawn from
  // `seed`, so a chunk holds unrelated images and chunk-level shuffling gives well-mixed batches;
  // grid: dSprites' order (neighbouring images differ in position only).
  bool shuffled = true;
  uint64_t seed = 1;       // of the order and of the RGB colours
  int64_t max_images = 0;  // write only the first N images of the order (0: all 737,280)
  int64_t val = 0;         // the last `val` images (of those written) become split "validation"
  int64_t chunk_images = 256;
  Compression compression = Compression::gzip;
  bool checksum = true;
  int64_t shard_images = 65536;  // 0: one file per split
  bool overwrite = false;        // see ConvertImagesOptions::overwrite
  int threads = 1;               // rendering threads; the calling thread writes
  int rank = 0, world = 1;
  std::function<void(const ConvertProgress&)> progress;
  std::function<void(const ShardTask&)> on_shard_done;
};

struct ProceduralConversion {
  ConvertProceduralOptions options;
  int64_t height = 0, width = 0, channels = 0, count = 0;
  std::vector<ShardTask> tasks;
  std::vector<std::string> stale;
};

// Fixes the shards and checks the output directory, as plan_images_conversion does.
ProceduralConversion plan_procedural_conversion(const ConvertProceduralOptions& options);
// Writes this process's incomplete shards.
ShardWork convert_procedural_shards(const ProceduralConversion& plan);
// After every process has finished: removes stale shards, reads the summary from disk.
ConvertSummary finish_procedural_conversion(const ProceduralConversion& plan);
// All three in one process.
ConvertSummary convert_procedural(const ConvertProceduralOptions& options);

// Position k of the file order -> grid index (the permutation `shuffled` uses, or identity).
std::vector<int64_t> sprite_order(bool shuffled, uint64_t seed);

}  // namespace distvae
