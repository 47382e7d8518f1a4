// A dataset held in memory: all images of some HDF5 shards (small datasets, preload).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/data/image_batch.h"

namespace distvae {

struct ImageSet {
  ImageGeom geom;
  int64_t count = 0;
  std::vector<uint8_t> pixels;  // (count, H, W, C)
  std::vector<int32_t> labels;  // (count) when the shards have labels
  std::vector<std::string> files;
};

// Loads every image of the files matching `pattern` (at most max_images when > 0). `key` names
// the config key for messages ("data.train").
ImageSet load_image_set(const std::string& pattern, int64_t max_images, const std::string& key);

}  // namespace distvae
