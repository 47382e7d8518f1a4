// Tests for io/image/jpeg: round trips within JPEG's error, DCT-scaled decoding sizes and accuracy,
// corrupt and truncated files rejected with the file named.
#include "io/image/jpeg.h"

#include <gtest/gtest.h>

#include <cmath>

#include "io/image/resize.h"
#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

using testing::TempDir;

// A smooth RGB test image (JPEG's error on it is small and predictable).
std::vector<uint8_t> smooth_rgb(int w, int h) {
  std::vector<uint8_t> px(static_cast<size_t>(w * h * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = px.data() + (static_cast<size_t>(y) * w + x) * 3;
      p[0] = static_cast<uint8_t>(255.0 * x / (w - 1));
      p[1] = static_cast<uint8_t>(255.0 * y / (h - 1));
      p[2] = static_cast<uint8_t>(128 + 100 * std::sin(0.05 * (x + y)));
    }
  return px;
}

double mean_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  EXPECT_EQ(a.size(), b.size());
  double s = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) s += std::abs(int(a[i]) - int(b[i]));
  return s / double(a.size());
}

TEST(Jpeg, RgbAndGrayRoundTripWithinJpegError) {
  TempDir dir;
  const auto rgb = smooth_rgb(40, 30);
  write_jpeg(dir / "c.jpg", rgb.data(), 40, 30, 3, 95);
  const Image c = read_jpeg(dir / "c.jpg");
  EXPECT_EQ(c.width, 40);
  EXPECT_EQ(c.height, 30);
  EXPECT_EQ(c.channels, 3);
  EXPECT_LT(mean_abs_diff(c.pixels, rgb), 3.0);

  std::vector<uint8_t> gray(40 * 30);
  for (size_t i = 0; i < gray.size(); ++i) gray[i] = rgb[3 * i];
  write_jpeg(dir / "g.jpg", gray.data(), 40, 30, 1, 95);
  const Image g = read_jpeg(dir / "g.jpg");
  EXPECT_EQ(g.channels, 1);
  EXPECT_LT(mean_abs_diff(g.pixels, gray), 2.0);
}

TEST(Jpeg, DctScalingPicksTheSmallestSizeStillLargeEnough) {
  TempDir dir;
  const auto rgb = smooth_rgb(400, 300);
  write_jpeg(dir / "big.jpg", rgb.data(), 400, 300, 3, 95);
  struct Case {
    int min, w, h;
  } cases[] = {{0, 400, 300}, {300, 400, 300}, {150, 200, 150}, {100, 200, 150},
               {70, 100, 75}, {37, 50, 38},    {10, 50, 38}};
  for (const Case& c : cases) {
    const Image img = read_jpeg(dir / "big.jpg", c.min, c.min);
    EXPECT_EQ(img.width, c.w) << "min " << c.min;
    EXPECT_EQ(img.height, c.h) << "min " << c.min;
    EXPECT_GE(std::min(img.width, img.height), c.min);
  }
  // Scaled decoding followed by the area filter is close to full decoding followed by it.
  const Image full = resize(read_jpeg(dir / "big.jpg"), 48, 48, ResizeFilter::area);
  const Image draft = resize(read_jpeg(dir / "big.jpg", 48, 48), 48, 48, ResizeFilter::area);
  EXPECT_LT(mean_abs_diff(full.pixels, draft.pixels), 2.0);
}

TEST(Jpeg, CorruptAndTruncatedFilesAreErrorsNamingTheFile) {
  TempDir dir;
  const auto rgb = smooth_rgb(64, 64);
  write_jpeg(dir / "ok.jpg", rgb.data(), 64, 64, 3, 90);
  auto bytes = testing::read_bytes(dir / "ok.jpg");

  testing::write_bytes(dir / "noise.jpg", testing::pattern_bytes(500, 3));
  testing::expect_error([&] { read_jpeg(dir / "noise.jpg"); }, {dir / "noise.jpg", "not a JPEG"});

  // A JPEG signature followed by garbage.
  std::vector<uint8_t> fake = {0xFF, 0xD8, 0xFF, 0xE0};
  const auto junk = testing::pattern_bytes(300, 4);
  fake.insert(fake.end(), junk.begin(), junk.end());
  testing::write_bytes(dir / "fake.jpg", fake);
  testing::expect_error([&] { read_jpeg(dir / "fake.jpg"); }, {dir / "fake.jpg", "corrupt JPEG"});

  // Cut in the middle of the entropy-coded data: libjpeg would pad it with gray; we refuse.
  std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(bytes.size() / 2));
  testing::write_bytes(dir / "cut.jpg", cut);
  testing::expect_error([&] { read_jpeg(dir / "cut.jpg"); }, {dir / "cut.jpg", "corrupt JPEG"});

  testing::expect_error([&] { read_jpeg(dir / "missing.jpg"); }, {dir / "missing.jpg"});
}

}  // namespace
}  // namespace distvae
