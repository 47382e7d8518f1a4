// Reading and writing 8-bit gray / RGB PNG files (libpng).
#pragma once

#include <cstdint>
#include <string>

#include "io/image/image.h"

namespace distvae {

// Writes pixels: (height, width, channels) interleaved, channels 1 (gray) or 3 (RGB), 8-bit.
// Throws std::runtime_error naming the file if it cannot be written completely.
void write_png(const std::string& path, const uint8_t* pixels, int width, int height, int channels);
inline void write_png(const std::string& path, const Image& img) {
  write_png(path, img.pixels.data(), img.width, img.height, img.channels);
}

// Reads any PNG as 8-bit gray (channels 1) or RGB (channels 3): palettes expand to RGB, 1/2/4-bit
// gray to 8-bit, 16-bit samples are scaled to 8-bit, and alpha (or a tRNS transparency) is
// composited onto black, then dropped. Gamma chunks are ignored: the stored values are returned.
// Throws std::runtime_error naming the file when it is missing, not a PNG, or corrupt.
Image read_png(const std::string& path);

}  // namespace distvae
