// Converting IDX files (MNIST / Fashion-MNIST) to HDF5 shards, with an optional validation split.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/convert/split_shards.h"

namespace distvae {

struct ConvertIdxOptions {
  std::string images_path;  // uint8 [N, H, W] IDX, plain or .gz
  std::string labels_path;  // uint8 [N] IDX; empty for none
  std::string out_dir;
  std::string prefix = "data";  // files are <out_dir>/<prefix>-<split>-<shard:05d>.h5
  // The LAST `val` images become split "validation", the rest "train" (Fashion-MNIST's
  // protocol: val = 10000 of the 60000 training images).
  int64_t val = 0;
  // The split name when val == 0. Empty: inferred from the images file name ("t10k*" or "test*"
  // -> "test", "train*" -> "train"); any other name must be given.
  std::string split;
  // Images per chunk, the unit of every read and of the shard plan's shuffle. 256 keeps a chunk
  // of 28x28 images at 200 KB (inside HDF5's default 1 MiB chunk cache, large enough for gzip and
  // for sequential disk reads) while 60000 images still make ~235 chunks to deal among ranks.
  int64_t chunk_images = 256;
  Compression compression = Compression::gzip;
  bool checksum = true;
  int64_t shard_images = 0;  // images per file; 0 = one file per split
  bool overwrite = false;    // replace existing shards of the same prefix and split
};

// What a conversion wrote: the image size and, per split in the order written, the count, the
// files and the sum of all pixel values (to compare against the input).
struct ConvertSummary {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<SplitSummary> splits;
};

// Reads the IDX file(s), checks that labels (if given) match the images one to one, and writes
// the shards. Prints nothing. Throws std::runtime_error naming the file and the problem.
ConvertSummary convert_idx(const ConvertIdxOptions& options);

}  // namespace distvae
