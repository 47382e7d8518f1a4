// An 8-bit image in memory, channel conversion, and sample grids made of many images.
#pragma once

#include <cstdint>
#include <vector>

namespace distvae {

// pixels: (height, width, channels) row-major, interleaved; channels 1 (gray) or 3 (RGB).
struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

// Returns `in` with `channels` channels (1 or 3): gray is replicated to RGB; RGB becomes gray
// with the Rec. 601 luma weights 0.299 R + 0.587 G + 0.114 B (PIL's convert("L") up to
// rounding).
Image convert_channels(const Image& in, int channels);

// Tiles n images into a grid of `cols` columns (fewer if n < cols) with `pad` pixels of
// `pad_value` between and around them. images: (n, C, H, W) floats in [0, 1] (clamped; NaN
// becomes 0), C 1 or 3. The result is (rows * H + (rows + 1) * pad) x (cols * W + (cols + 1) *
// pad) with C channels, rows = ceil(n / cols).
Image make_grid(const float* images, int n, int C, int H, int W, int cols, int pad,
                uint8_t pad_value = 0);

}  // namespace distvae
