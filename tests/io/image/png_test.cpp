// Tests for io/image/png: gray and RGB round trips, conversions of other PNG kinds, corrupt files.
#include "io/image/png.h"

#include <gtest/gtest.h>
#include <png.h>

#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

using testing::TempDir;

TEST(Png, GrayRoundTrip) {
  TempDir dir;
  const auto pixels = testing::pattern_bytes(7 * 5, 1);
  write_png(dir / "g.png", pixels.data(), 7, 5, 1);
  const Image img = read_png(dir / "g.png");
  EXPECT_EQ(img.width, 7);
  EXPECT_EQ(img.height, 5);
  EXPECT_EQ(img.channels, 1);
  EXPECT_EQ(img.pixels, pixels);
}

TEST(Png, RgbRoundTrip) {
  TempDir dir;
  const auto pixels = testing::pattern_bytes(4 * 9 * 3, 2);
  write_png(dir / "c.png", pixels.data(), 4, 9, 3);
  const Image img = read_png(dir / "c.png");
  EXPECT_EQ(img.width, 4);
  EXPECT_EQ(img.height, 9);
  EXPECT_EQ(img.channels, 3);
  EXPECT_EQ(img.pixels, pixels);
}

// Other PNG kinds, written with libpng's simplified API (independent of the code under test).
void write_simplified(const std::string& path, uint32_t format, int w, int h, const void* data,
                      const void* colormap = nullptr, int colormap_entries = 0) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(w);
  image.height = static_cast<png_uint_32>(h);
  image.format = format;
  image.colormap_entries = static_cast<png_uint_32>(colormap_entries);
  ASSERT_NE(png_image_write_to_file(&image, path.c_str(), 0, data, 0, colormap), 0)
      << image.message;
}

TEST(Png, RgbaIsCompositedOntoBlack) {
  TempDir dir;
  const uint8_t rgba[] = {200, 100, 50, 255, 200, 100, 50, 0, 200, 100, 50, 128};
  write_simplified(dir / "a.png", PNG_FORMAT_RGBA, 3, 1, rgba);
  const Image img = read_png(dir / "a.png");
  EXPECT_EQ(img.channels, 3);
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{200, 100, 50, 0, 0, 0, 100, 50, 25}));
}

TEST(Png, SixteenBitGrayBecomesEightBit) {
  TempDir dir;
  // The simplified API stores linear 16-bit values as they are (no gamma when writing linear).
  const uint16_t gray[] = {0, 65535, 32896, 257};
  write_simplified(dir / "g16.png", PNG_FORMAT_LINEAR_Y, 4, 1, gray);
  const Image img = read_png(dir / "g16.png");
  EXPECT_EQ(img.channels, 1);
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{0, 255, 128, 1}));
}

TEST(Png, PaletteBecomesRgb) {
  TempDir dir;
  const uint8_t colormap[] = {10, 20, 30, 200, 210, 220};
  const uint8_t index[] = {0, 1, 1, 0};
  write_simplified(dir / "p.png", PNG_FORMAT_RGB_COLORMAP, 2, 2, index, colormap, 2);
  const Image img = read_png(dir / "p.png");
  EXPECT_EQ(img.channels, 3);
  EXPECT_EQ(img.pixels,
            (std::vector<uint8_t>{10, 20, 30, 200, 210, 220, 200, 210, 220, 10, 20, 30}));
}

TEST(Png, CorruptFilesAreNamed) {
  TempDir dir;
  testing::write_bytes(dir / "junk.png", testing::pattern_bytes(100, 3));
  testing::expect_error([&] { read_png(dir / "junk.png"); }, {dir / "junk.png", "not a PNG"});

  const auto pixels = testing::pattern_bytes(32 * 32 * 3, 4);
  write_png(dir / "ok.png", pixels.data(), 32, 32, 3);
  auto bytes = testing::read_bytes(dir / "ok.png");
  auto cut = bytes;
  cut.resize(bytes.size() / 2);
  testing::write_bytes(dir / "cut.png", cut);
  testing::expect_error([&] { read_png(dir / "cut.png"); }, {dir / "cut.png", "corrupt PNG"});

  auto flipped = bytes;
  flipped[bytes.size() / 2] ^= 0xff;  // inside IDAT: its CRC no longer matches
  testing::write_bytes(dir / "crc.png", flipped);
  testing::expect_error([&] { read_png(dir / "crc.png"); }, {dir / "crc.png", "corrupt PNG"});

  testing::expect_error([&] { read_png(dir / "missing.png"); },
                        {dir / "missing.png", "No such file"});
}

TEST(Png, WriteErrors) {
  TempDir dir;
  const uint8_t px[4] = {};
  testing::expect_error([&] { write_png(dir / "x.png", px, 2, 2, 2); }, {"x.png", "2 channels"});
  testing::expect_error([&] { write_png(dir / "no/dir/x.png", px, 2, 2, 1); },
                        {"no/dir/x.png", "cannot create"});
}

}  // namespace
}  // namespace distvae
