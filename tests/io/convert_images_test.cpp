// Tests for io/convert_images: a folder tree of PNGs to shards, corrupt files skipped and named,
// size mismatches rejected, channel conversion.
#include "io/convert_images.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "io/hdf5_dataset.h"
#include "io/png.h"
#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr int kW = 6, kH = 4;

// in/a.png, in/b.png (gray), in/sub/c.png, in/sub/d.png, in/sub/broken.png (corrupt),
// in/notes.txt. Returns the RGB pixels of a, b, c, d in sorted path order.
std::vector<std::vector<uint8_t>> make_folder(const TempDir& dir) {
  fs::create_directories(dir / "in/sub");
  std::vector<std::vector<uint8_t>> rgb;
  const char* names[] = {"in/a.png", "in/b.png", "in/sub/c.png", "in/sub/d.png"};
  for (int i = 0; i < 4; ++i) {
    if (i == 1) {
      const auto gray = testing::pattern_bytes(kW * kH, 100);
      write_png(dir / names[i], gray.data(), kW, kH, 1);
      std::vector<uint8_t> expanded;
      for (uint8_t g : gray) expanded.insert(expanded.end(), {g, g, g});
      rgb.push_back(expanded);
    } else {
      rgb.push_back(testing::pattern_bytes(kW * kH * 3, static_cast<uint32_t>(i)));
      write_png(dir / names[i], rgb.back().data(), kW, kH, 3);
    }
  }
  testing::write_bytes(dir / "in/sub/broken.png", testing::pattern_bytes(64, 9));
  testing::write_bytes(dir / "in/notes.txt", {'h', 'i'});
  return rgb;
}

TEST(ConvertImages, CorruptFileIsSkippedAndNamed) {
  TempDir dir;
  const auto rgb = make_folder(dir);
  ConvertImagesOptions o;
  o.input_dir = dir / "in";
  o.out_dir = dir / "out";
  o.chunk_images = 2;
  const ConvertImagesSummary s = convert_images(o);

  ASSERT_EQ(s.skipped.size(), 1u);
  EXPECT_EQ(s.skipped[0].path, dir / "in/sub/broken.png");
  EXPECT_NE(s.skipped[0].reason.find("not a PNG"), std::string::npos) << s.skipped[0].reason;
  EXPECT_EQ(s.written.width, kW);
  EXPECT_EQ(s.written.height, kH);
  EXPECT_EQ(s.written.channels, 3);
  ASSERT_EQ(s.written.splits.size(), 1u);
  EXPECT_EQ(s.written.splits[0].split, "train");
  EXPECT_EQ(s.written.splits[0].count, 4);

  Hdf5Dataset ds = Hdf5Dataset::open_glob(dir / "out/data-train-*.h5");
  EXPECT_EQ(ds.info().count, 4);
  EXPECT_EQ(ds.info().channels, 3);
  const size_t image_bytes = kW * kH * 3;
  std::vector<uint8_t> back(4 * image_bytes);
  ds.read_images(0, 4, back.data());
  uint64_t sum = 0;
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(std::equal(rgb[i].begin(), rgb[i].end(), back.begin() + i * image_bytes))
        << "image " << i;
    sum += testing::byte_sum(rgb[i].data(), rgb[i].size());
  }
  EXPECT_EQ(s.written.splits[0].pixel_sum, sum);
}

TEST(ConvertImages, GrayOutputAndValidationSplit) {
  TempDir dir;
  make_folder(dir);
  ConvertImagesOptions o;
  o.input_dir = dir / "in";
  o.out_dir = dir / "out";
  o.channels = 1;
  o.val = 1;  // the last file in path order: in/sub/d.png
  const ConvertImagesSummary s = convert_images(o);
  ASSERT_EQ(s.written.splits.size(), 2u);
  EXPECT_EQ(s.written.splits[0].count, 3);  // a, b, c (broken.png is skipped)
  EXPECT_EQ(s.written.splits[1].split, "validation");
  EXPECT_EQ(s.written.splits[1].count, 1);
  Hdf5Dataset va({s.written.splits[1].files[0]});
  EXPECT_EQ(va.info().channels, 1);
  std::vector<uint8_t> back(kW * kH);
  va.read_images(0, 1, back.data());
  EXPECT_EQ(back, convert_channels(read_png(dir / "in/sub/d.png"), 1).pixels);
}

TEST(ConvertImages, DifferentSizeIsAnErrorNamingTheFile) {
  TempDir dir;
  make_folder(dir);
  const auto big = testing::pattern_bytes(8 * 8 * 3, 5);
  write_png(dir / "in/sub/e.png", big.data(), 8, 8, 3);
  ConvertImagesOptions o;
  o.input_dir = dir / "in";
  o.out_dir = dir / "out";
  testing::expect_error([&] { convert_images(o); },
                        {dir / "in/sub/e.png", "8x8", dir / "in/a.png", "6x4", "one size"});
  // Nothing half-written is left under a shard name.
  EXPECT_FALSE(fs::exists(dir / "out/data-train-00000.h5"));
  EXPECT_FALSE(fs::exists(dir / "out/data-train-00000.h5.tmp"));
}

TEST(ConvertImages, EmptyOrMissingFolder) {
  TempDir dir;
  fs::create_directories(dir / "empty");
  ConvertImagesOptions o;
  o.input_dir = dir / "empty";
  o.out_dir = dir / "out";
  testing::expect_error([&] { convert_images(o); }, {dir / "empty", "no .png files"});
  o.input_dir = dir / "missing";
  testing::expect_error([&] { convert_images(o); }, {dir / "missing", "no such directory"});
}

}  // namespace
}  // namespace distvae
