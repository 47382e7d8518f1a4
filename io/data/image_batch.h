// Turning stored uint8 images (N, H, W, C) into the float batches the networks take (B, C, H, W),
// in [0, 1] or dynamically binarized.
#pragma once

#include <cstdint>

namespace distvae {

struct ImageGeom {
  int64_t height = 0, width = 0, channels = 0;
  int64_t pixels() const { return height * width * channels; }
};

// out (B, C, H, W) from images[b] (each HWC uint8). With binarize_seed >= 0 each pixel becomes
// Bernoulli(intensity), drawn from the stream (binarize, key[b]); otherwise intensity / 255.
void decode_images(const uint8_t* const* images, const ImageGeom& g, const uint64_t* key, int B,
                   int64_t binarize_seed, float* out);

// The same for images[index[b]] of a contiguous (N, H, W, C) array. With binarize_seed >= 0 each
// pixel becomes Bernoulli(intensity), drawn from the stream (binarize, key[b]); otherwise
// intensity / 255.
void decode_batch(const uint8_t* images, const ImageGeom& g, const int64_t* index,
                  const uint64_t* key, int B, int64_t binarize_seed, float* out);

}  // namespace distvae
