// HWC uint8 -> CHW float, with the dynamic binarization draw keyed per image use.
#include "launch/image_batch.h"

#include <cmath>
#include <vector>

#include "core/rng.h"

namespace distvae {

namespace {

// Pixel k in [0, 255] is 1 with probability k/255: the uniform (u + 0.5) 2^-32 of word u is below
// k/255 exactly when u < ceil(k 2^32 / 255 - 1/2), an integer compare per pixel.
struct BinarizeThresholds {
  uint64_t t[256];
  BinarizeThresholds() {
    for (int k = 0; k < 256; ++k) {
      const long double x = (long double)k * 4294967296.0L / 255.0L - 0.5L;
      t[k] = x <= 0 ? 0 : uint64_t(std::ceil(x));
    }
  }
};

}  // namespace

void decode_images(const uint8_t* const* images, const ImageGeom& g, const uint64_t* key, int B,
                   int64_t binarize_seed, float* out) {
  static const BinarizeThresholds thr;
  const int64_t P = g.pixels(), HW = g.height * g.width, C = g.channels;
  thread_local std::vector<uint32_t> words;  // one buffer per (loader) thread, sized once
  if (binarize_seed >= 0) words.resize(size_t((P + 3) / 4) * 4);
  for (int b = 0; b < B; ++b) {
    const uint8_t* src = images[b];
    float* dst = out + int64_t(b) * P;
    if (binarize_seed >= 0)  // word i of the stream (binarize, key) decides stored pixel i
      random_words(uint64_t(binarize_seed), stream_id(rng_purpose::binarize, key[b]), 0,
                   size_t((P + 3) / 4), words.data());
    for (int64_t p = 0; p < HW; ++p)
      for (int64_t c = 0; c < C; ++c) {
        const uint8_t k = src[p * C + c];
        dst[c * HW + p] = binarize_seed >= 0 ? (words[size_t(p * C + c)] < thr.t[k] ? 1.0f : 0.0f)
                                             : float(k) * (1.0f / 255.0f);
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
