// Converting a folder of PNG images to HDF5 shards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/convert_idx.h"

namespace distvae {

struct ConvertImagesOptions {
  std::string input_dir;  // searched recursively for *.png (any case); other files are ignored
  std::string out_dir;
  std::string prefix = "data";  // files are <out_dir>/<prefix>-<split>-<shard:05d>.h5
  std::string split = "train";  // the split name when val == 0
  // The last `val` PNG files in sorted path order become split "validation", the rest `split`.
  // The split is decided by position in the file list, so an unreadable file among the last
  // `val` leaves the validation split one image short (the summary has the real counts).
  int64_t val = 0;
  // Channels stored: 1 (gray) or 3 (RGB); images are converted as needed (see convert_channels).
  int channels = 3;
  int64_t chunk_images = 256;  // see ConvertIdxOptions::chunk_images
  Compression compression = Compression::gzip;
  bool checksum = true;
  int64_t shard_images = 0;  // images per file; 0 = one file per split
  bool overwrite = false;    // replace existing shards of the same prefix and split
};

struct SkippedFile {
  std::string path;
  std::string reason;
};

struct ConvertImagesSummary {
  ConvertSummary written;
  std::vector<SkippedFile> skipped;  // unreadable files, in path order
};

// Streams the images (one in memory at a time) into shards. All images must share the size of
// the first readable one: the first that differs is an error naming it (there is no resizing
// yet). Unreadable or corrupt files are skipped and listed. Prints nothing.
ConvertImagesSummary convert_images(const ConvertImagesOptions& options);

}  // namespace distvae
