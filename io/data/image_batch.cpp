// HWC uint8 -> CHW float, with the dynamic binarization draw keyed per image use.
#include "io/data/image_batch.h"

#include <vector>

#include "core/rng.h"

namespace distvae {

namespace {

// Pixel k in [0, 255] is 1 with probability k/255: the uniform (u + 0.5) 2^-32 of word u is below
// k/255 exactly when 255 u + 127.5 < k 2^32, that is (both sides integers but the half) when
// 255 u + 128 <= k 2^32: integer arithmetic per pixel, no table lookup, so the loop vectorizes.
inline float binarize(uint32_t u, uint8_t k) {
  return static_cast<float>(255 * uint64_t(u) + 128 <= uint64_t(k) << 32);
}

}  // namespace

// Channel-major loops with the binarize choice outside them: for one channel both inner loops
// are contiguous and vectorize (the loader thread shares the rank's cores with compute).
void decode_images(const uint8_t* const* images, const ImageGeom& g, const uint64_t* key, int B,
                   int64_t binarize_seed, float* out) {
  const int64_t P = g.pixels(), HW = g.height * g.width, C = g.channels;
  thread_local std::vector<uint32_t> words;  // one buffer per (loader) thread, sized once
  if (binarize_seed >= 0) words.resize(size_t((P + 3) / 4) * 4);
  for (int b = 0; b < B; ++b) {
    const uint8_t* src = images[b];
    float* dst = out + int64_t(b) * P;
    if (binarize_seed < 0) {
      for (int64_t c = 0; c < C; ++c)
        for (int64_t p = 0; p < HW; ++p) dst[c * HW + p] = float(src[p * C + c]) * (1.0f / 255.0f);
      continue;
    }
    // Word i of the stream (binarize, key) decides stored pixel i.
    random_words(uint64_t(binarize_seed), stream_id(rng_purpose::binarize, key[b]), 0,
                 size_t((P + 3) / 4), words.data());
    const uint32_t* u = words.data();
    for (int64_t c = 0; c < C; ++c)
#pragma omp simd
      for (int64_t p = 0; p < HW; ++p) {  // a select, not a branch: the outcome is a coin flip
        const int64_t i = p * C + c;
        dst[c * HW + p] = binarize(u[i], src[i]);
      }
  }
}

void decode_batch(const uint8_t* images, const ImageGeom& g, const int64_t* index,
                  const uint64_t* key, int B, int64_t binarize_seed, float* out) {
  std::vector<const uint8_t*> ptr(static_cast<size_t>(B));
  for (int b = 0; b < B; ++b) ptr[size_t(b)] = images + index[b] * g.pixels();
  decode_images(ptr.data(), g, key, B, binarize_seed, out);
}

}  // namespace distvae
