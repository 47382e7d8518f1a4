// Tests for io/image/resize: the area filter's exact block means and fractional weights, the
// antialiased bilinear filter, constants preserved, centre crops.
#include "io/image/resize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

Image make(int w, int h, int c, std::vector<uint8_t> px) {
  Image img;
  img.width = w, img.height = h, img.channels = c;
  img.pixels = std::move(px);
  return img;
}

TEST(Resize, ConstantImagesStayConstant) {
  for (ResizeFilter f : {ResizeFilter::area, ResizeFilter::bilinear})
    for (auto [w, h] : {std::pair{37, 23}, std::pair{5, 9}, std::pair{128, 96}}) {
      const Image in = make(w, h, 3, std::vector<uint8_t>(size_t(w * h * 3), 173));
      const Image out = resize(in, 16, 12, f);
      EXPECT_EQ(out.width, 16);
      EXPECT_EQ(out.height, 12);
      for (uint8_t v : out.pixels) ASSERT_EQ(v, 173) << to_string(f) << " " << w << "x" << h;
    }
}

TEST(Resize, AreaHalvingIsTheMeanOfEach2x2Block) {
  const Image in = make(8, 6, 1, testing::pattern_bytes(48, 7));
  const Image out = resize(in, 4, 3, ResizeFilter::area);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x) {
      const auto p = [&](int yy, int xx) { return int(in.pixels[size_t(yy * 8 + xx)]); };
      const double mean =
          (p(2 * y, 2 * x) + p(2 * y, 2 * x + 1) + p(2 * y + 1, 2 * x) + p(2 * y + 1, 2 * x + 1)) /
          4.0;
      EXPECT_NEAR(out.pixels[size_t(y * 4 + x)], mean, 0.5 + 1e-4) << x << "," << y;
    }
}

TEST(Resize, AreaWeighsPartlyCoveredPixelsByTheirCoverage) {
  // 3 -> 2 along x: output 0 covers [0, 1.5): pixel 0 fully, pixel 1 half: (a + b/2) / 1.5.
  const Image in = make(3, 1, 1, {30, 90, 210});
  const Image out = resize(in, 2, 1, ResizeFilter::area);
  EXPECT_EQ(out.pixels[0], static_cast<uint8_t>(std::lround((30 + 45) / 1.5)));   // 50
  EXPECT_EQ(out.pixels[1], static_cast<uint8_t>(std::lround((45 + 210) / 1.5)));  // 170
}

TEST(Resize, AreaKeepsTheMeanAndRemovesACheckerboard) {
  std::vector<uint8_t> px(64 * 64);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) px[size_t(y * 64 + x)] = ((x + y) % 2) ? 255 : 0;
  const Image out = resize(make(64, 64, 1, px), 16, 16, ResizeFilter::area);
  for (uint8_t v : out.pixels) EXPECT_NEAR(v, 127.5, 0.6);
  // Non-integer factor: means agree to rounding.
  const Image in = make(50, 30, 1, testing::pattern_bytes(1500, 2));
  const Image small = resize(in, 17, 11, ResizeFilter::area);
  const double m_in = std::accumulate(in.pixels.begin(), in.pixels.end(), 0.0) / 1500.0;
  const double m_out = std::accumulate(small.pixels.begin(), small.pixels.end(), 0.0) / 187.0;
  EXPECT_NEAR(m_in, m_out, 0.6);
}

TEST(Resize, BilinearEnlargingInterpolatesLinearly) {
  // A horizontal ramp 0, 100, 200 enlarged 2x: interior samples sit at x = 0.25, 0.75 ... of the
  // input pixel spacing, so values 25 apart, and the ends are clamped to the edge pixels.
  const Image in = make(3, 1, 1, {0, 100, 200});
  const Image out = resize(in, 6, 1, ResizeFilter::bilinear);
  const uint8_t want[6] = {0, 25, 75, 125, 175, 200};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(out.pixels[size_t(i)], want[i], 1) << i;
}

TEST(Resize, BilinearShrinkingIsAntialiased) {
  // A 1-pixel checkerboard shrunk 4x: plain bilinear sampling would give 0 or 255 stripes.
  std::vector<uint8_t> px(64 * 64);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) px[size_t(y * 64 + x)] = ((x + y) % 2) ? 255 : 0;
  const Image out = resize(make(64, 64, 1, px), 16, 16, ResizeFilter::bilinear);
  for (uint8_t v : out.pixels) EXPECT_NEAR(v, 127.5, 8);
}

TEST(Resize, CenterCropTakesTheMiddleSquare) {
  std::vector<uint8_t> px(5 * 3);
  std::iota(px.begin(), px.end(), 0);
  const Image c = center_crop_square(make(5, 3, 1, px));  // columns 1..3
  EXPECT_EQ(c.width, 3);
  EXPECT_EQ(c.height, 3);
  EXPECT_EQ(c.pixels, (std::vector<uint8_t>{1, 2, 3, 6, 7, 8, 11, 12, 13}));
  const Image t =
      center_crop_square(make(2, 5, 1, std::vector<uint8_t>(px.begin(), px.begin() + 10)));
  EXPECT_EQ(t.pixels, (std::vector<uint8_t>{2, 3, 4, 5}));  // rows 1..2
}

TEST(Resize, BadSizesAreErrors) {
  const Image in = make(2, 2, 1, {1, 2, 3, 4});
  EXPECT_THROW(resize(in, 0, 3, ResizeFilter::area), std::invalid_argument);
  EXPECT_THROW(resize(Image{}, 3, 3, ResizeFilter::area), std::invalid_argument);
  testing::expect_error([] { resize_filter_from_string("lanczos"); }, {"lanczos", "area"});
}

}  // namespace
}  // namespace distvae
