// Reading and writing 8-bit gray / RGB JPEG files (libjpeg-turbo through the libjpeg API).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "io/image/image.h"

namespace distvae {

// Decodes a JPEG held in memory as gray (channels 1, for grayscale JPEGs) or RGB (channels 3:
// YCbCr, RGB and Adobe CMYK / YCCK files). `path` only names the file in errors.
//
// Reduced-size decoding: when min_width / min_height are positive, the decoder's DCT scaling
// returns the image at 1/2, 1/4 or 1/8 of its size, the smallest of those that is still at least
// min_width x min_height (libjpeg rounds each side up: ceil(side / d)). Decoding a 1024x768 photo
// for a 64x64 dataset at 1/8 is ~10x faster than in full and averages 8x8 blocks, which is itself
// an area filter. 0 decodes at full size.
//
// Strict: a file that libjpeg would decode with a warning about corrupt data (a truncated file
// decodes to a grey lower part, a bad Huffman code to garbage) is an error here, so a damaged
// image never enters a dataset. Throws std::runtime_error naming the file and libjpeg's reason.
Image decode_jpeg(const uint8_t* data, size_t size, const std::string& path, int min_width = 0,
                  int min_height = 0);

// Reads the file and decodes it as above. Throws naming the file if it cannot be read.
Image read_jpeg(const std::string& path, int min_width = 0, int min_height = 0);

// Writes pixels (height, width, channels), channels 1 or 3, as a baseline JPEG of `quality`
// (1..100). For tests and tools; throws naming the file if it cannot be written completely.
void write_jpeg(const std::string& path, const uint8_t* pixels, int width, int height, int channels,
                int quality = 90);

// True if the bytes start with a JPEG SOI marker and a third 0xFF byte (FF D8 FF).
bool looks_like_jpeg(const uint8_t* data, size_t size);

}  // namespace distvae
