// HWC uint8 -> CHW float, with the dynamic binarization draw keyed per image use.
#include "launch/image_batch.h"

#include <vector>

#include "core/rng.h"

namespace distvae {

void decode_images(const uint8_t* const* images, const ImageGeom& g, const uint64_t* key, int B,
                   int64_t binarize_seed, float* out) {
  const int64_t P = g.pixels(), HW = g.height * g.width, C = g.channels;
  thread_local std::vector<float> u;  // one buffer per (loader) thread, sized once
  if (binarize_seed >= 0) u.resize(size_t(P));
  for (int b = 0; b < B; ++b) {
    const uint8_t* src = images[b];
    float* dst = out + int64_t(b) * P;
    if (binarize_seed >= 0)
      uniform_fill(uint64_t(binarize_seed), stream_id(rng_purpose::binarize, key[b]), 0, size_t(P),
                   u.data());
    for (int64_t p = 0; p < HW; ++p)
      for (int64_t c = 0; c < C; ++c) {
        const float v = float(src[p * C + c]) * (1.0f / 255.0f);
        // u is indexed in storage (HWC) order, so the draw of a pixel does not depend on layout.
        dst[c * HW + p] = binarize_seed >= 0 ? (u[size_t(p * C + c)] < v ? 1.0f : 0.0f) : v;
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
