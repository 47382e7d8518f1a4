// Tests for io/image: grid layout and pixel placement, channel conversion.
#include "io/image/image.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

TEST(MakeGrid, SizeAndPlacement) {
  // 5 gray images of 2x3 (H x W), image k filled with k / 4.
  const int n = 5, C = 1, H = 2, W = 3;
  std::vector<float> images(n * C * H * W);
  for (int k = 0; k < n; ++k)
    for (int i = 0; i < H * W; ++i) images[k * H * W + i] = static_cast<float>(k) / 4.0f;
  const Image g = make_grid(images.data(), n, C, H, W, /*cols=*/3, /*pad=*/1, /*pad_value=*/7);
  EXPECT_EQ(g.channels, 1);
  EXPECT_EQ(g.width, 3 * W + 4 * 1);   // 13
  EXPECT_EQ(g.height, 2 * H + 3 * 1);  // 7
  ASSERT_EQ(g.pixels.size(), 13u * 7u);
  auto at = [&](int y, int x) { return g.pixels[static_cast<size_t>(y * g.width + x)]; };
  EXPECT_EQ(at(0, 0), 7);    // padding
  EXPECT_EQ(at(1, 1), 0);    // image 0
  EXPECT_EQ(at(1, 5), 64);   // image 1 at x = 1 + 3 + 1: round(0.25 * 255)
  EXPECT_EQ(at(4, 1), 191);  // image 3, second row: round(0.75 * 255)
  EXPECT_EQ(at(5, 7), 255);  // image 4
  EXPECT_EQ(at(4, 9), 7);    // the empty sixth cell stays padding
}

TEST(MakeGrid, ClampsAndRgb) {
  const float img[] = {-1.0f, 2.0f, NAN, 0.5f, 0.5f, 0.5f};  // (C=3, H=1, W=2)
  const Image g = make_grid(img, 1, 3, 1, 2, 8, 0);
  EXPECT_EQ(g.width, 2);  // cols shrinks to n
  EXPECT_EQ(g.height, 1);
  EXPECT_EQ(g.pixels, (std::vector<uint8_t>{0, 0, 128, 255, 128, 128}));
  testing::expect_error([&] { make_grid(img, 1, 2, 1, 2, 1, 0); }, {"C 2"});
}

TEST(ConvertChannels, GrayToRgbAndBack) {
  Image gray{2, 1, 1, {10, 200}};
  const Image rgb = convert_channels(gray, 3);
  EXPECT_EQ(rgb.pixels, (std::vector<uint8_t>{10, 10, 10, 200, 200, 200}));
  EXPECT_EQ(convert_channels(rgb, 1).pixels, gray.pixels);
  Image red{1, 1, 3, {255, 0, 0}};
  EXPECT_EQ(convert_channels(red, 1).pixels, (std::vector<uint8_t>{76}));  // 0.299 * 255
}

}  // namespace
}  // namespace distvae
