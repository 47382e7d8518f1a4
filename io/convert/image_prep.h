// Reading one image file (PNG or JPEG, told apart by content) and bringing it to the dataset's
// fixed size and channel count: optional centre crop, resize, gray / RGB conversion.
#pragma once

#include <string>

#include "io/image/image.h"
#include "io/image/resize.h"

namespace distvae {

struct ImagePrep {
  // Output side: images become size x size. 0 keeps every image's own size (the converter then
  // requires all images to share one).
  int size = 0;
  // Crop the largest centred square before resizing; off, the whole image is resized to
  // size x size (the aspect ratio is not kept).
  bool crop_center = false;
  ResizeFilter filter = ResizeFilter::area;
  int channels = 3;  // 1 (gray, Rec. 601 luma) or 3 (RGB)
  // JPEG only: decode at 1/2, 1/4 or 1/8 scale when the result is still at least size x size
  // (see decode_jpeg); the resize filter does the rest.
  bool jpeg_dct_scaling = true;
};

// One line describing the preparation, stored with the shards, e.g.
// "size=64 crop=center filter=area channels=3 jpeg_dct_scaling=on".
std::string describe(const ImagePrep& p);

// Reads `path` (PNG or JPEG, recognised by its first bytes whatever its name) and prepares it.
// Throws std::runtime_error naming the file when it cannot be read or decoded.
Image load_prepared_image(const std::string& path, const ImagePrep& p);

// The preparation alone, for an image already in memory.
Image prepare_image(const Image& in, const ImagePrep& p);

}  // namespace distvae
