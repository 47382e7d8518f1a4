// decode_images: HWC uint8 -> CHW float, and dynamic binarization with P(1) = intensity / 255.
#include "io/data/image_batch.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/rng.h"

namespace distvae {
namespace {

TEST(ImageBatch, IntensitiesAndChannelLayout) {
  const ImageGeom g{2, 3, 3};  // H, W, C
  std::vector<uint8_t> img(18);
  for (size_t i = 0; i < img.size(); ++i) img[i] = uint8_t(i * 14);
  const uint8_t* ptr = img.data();
  const uint64_t key = 0;
  std::vector<float> out(18);
  decode_images(&ptr, g, &key, 1, -1, out.data());
  for (int p = 0; p < 6; ++p)
    for (int c = 0; c < 3; ++c)
      EXPECT_FLOAT_EQ(out[size_t(c * 6 + p)], float(img[size_t(p * 3 + c)]) / 255.0f);
}

TEST(ImageBatch, BinarizationProbabilityIsIntensity) {
  // One image holding every intensity 0..255; many independent uses (keys).
  const ImageGeom g{16, 16, 1};
  std::vector<uint8_t> img(256);
  for (int k = 0; k < 256; ++k) img[size_t(k)] = uint8_t(k);
  const int uses = 20000;
  std::vector<const uint8_t*> ptr(64, img.data());
  std::vector<uint64_t> keys(64);
  std::vector<float> out(64 * 256);
  std::vector<double> ones(256, 0.0);
  for (int u = 0; u < uses; u += 64) {
    for (int b = 0; b < 64; ++b) keys[size_t(b)] = uint64_t(u + b);
    decode_images(ptr.data(), g, keys.data(), 64, 9, out.data());
    for (int b = 0; b < 64; ++b)
      for (int k = 0; k < 256; ++k) {
        const float v = out[size_t(b * 256 + k)];
        ASSERT_TRUE(v == 0.0f || v == 1.0f);
        ones[size_t(k)] += v;
      }
  }
  const double n = double((uses + 63) / 64 * 64);  // draws made by the loop above
  EXPECT_EQ(ones[0], 0.0);
  EXPECT_EQ(ones[255], n);
  for (int k = 1; k < 255; ++k) {
    const double p = k / 255.0, se = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(ones[size_t(k)] / n, p, 5 * se) << "intensity " << k;
  }
}

// Every pixel against the rule written out directly from the stream's words: pixel i of intensity
// k is 1 exactly when the uniform (u_i + 1/2) 2^-32 is below k / 255, in exact rational arithmetic
// (2 u_i + 1) 255 < k 2^33. Three channels, so the channel-major loops are covered too.
TEST(ImageBatch, BinarizationMatchesTheStreamsWordsPixelByPixel) {
  const ImageGeom g{9, 7, 3};
  const int64_t P = g.pixels(), HW = 63, C = 3, B = 5;
  std::vector<uint8_t> img(size_t(B * P));
  for (size_t i = 0; i < img.size(); ++i) img[i] = uint8_t((i * 37 + 11) % 256);
  std::vector<const uint8_t*> ptr;
  std::vector<uint64_t> keys;
  for (int64_t b = 0; b < B; ++b) ptr.push_back(img.data() + b * P), keys.push_back(100 + b);
  std::vector<float> out(size_t(B * P));
  decode_images(ptr.data(), g, keys.data(), int(B), 17, out.data());
  std::vector<uint32_t> u(size_t((P + 3) / 4 * 4));
  for (int64_t b = 0; b < B; ++b) {
    random_words(17, stream_id(rng_purpose::binarize, keys[size_t(b)]), 0, u.size() / 4, u.data());
    for (int64_t p = 0; p < HW; ++p)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t i = p * C + c;
        const uint64_t lhs = (2 * uint64_t(u[size_t(i)]) + 1) * 255;  // < 2^41
        const uint64_t rhs = uint64_t(img[size_t(b * P + i)]) << 33;
        EXPECT_EQ(out[size_t(b * P + c * HW + p)], lhs < rhs ? 1.0f : 0.0f)
            << "image " << b << " pixel " << p << " channel " << c;
      }
  }
}

TEST(ImageBatch, SameKeySameDrawDifferentKeyDifferent) {
  const ImageGeom g{28, 28, 1};
  std::vector<uint8_t> img(784, 128);
  const uint8_t* ptr[2] = {img.data(), img.data()};
  const uint64_t same[2] = {5, 5}, other[2] = {5, 6};
  std::vector<float> a(2 * 784), b(2 * 784);
  decode_images(ptr, g, same, 2, 3, a.data());
  decode_images(ptr, g, other, 2, 3, b.data());
  EXPECT_TRUE(std::equal(a.begin(), a.begin() + 784, a.begin() + 784));
  EXPECT_FALSE(std::equal(b.begin(), b.begin() + 784, b.begin() + 784));
}

}  // namespace
}  // namespace distvae
