// Tests for io/convert/idx: plain and gzip round trips, bad magic, truncated and over-long files.
#include "io/convert/idx.h"

#include <gtest/gtest.h>

#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

using testing::TempDir;

TEST(Idx, ReadsPlainImages) {
  TempDir dir;
  const auto pixels = testing::pattern_bytes(5 * 3 * 4, 1);
  testing::write_bytes(dir / "img.idx", testing::idx_bytes(0x00000803, {5, 3, 4}, pixels));
  const IdxArray a = read_idx_images(dir / "img.idx");
  EXPECT_EQ(a.dims, (std::vector<uint32_t>{5, 3, 4}));
  EXPECT_EQ(a.data, pixels);
}

TEST(Idx, ReadsGzipImagesAndLabels) {
  TempDir dir;
  const auto pixels = testing::pattern_bytes(7 * 2 * 2, 2);
  const std::vector<uint8_t> labels{0, 1, 2, 3, 4, 5, 9};
  testing::write_gzip(dir / "img.gz", testing::idx_bytes(0x00000803, {7, 2, 2}, pixels));
  testing::write_gzip(dir / "lab.gz", testing::idx_bytes(0x00000801, {7}, labels));
  EXPECT_EQ(read_idx_images(dir / "img.gz").data, pixels);
  const IdxArray l = read_idx_labels(dir / "lab.gz");
  EXPECT_EQ(l.dims, (std::vector<uint32_t>{7}));
  EXPECT_EQ(l.data, labels);
}

TEST(Idx, BadMagicNamesFileAndBothMagics) {
  TempDir dir;
  testing::write_bytes(dir / "x.idx", testing::idx_bytes(0x12345678, {1, 1, 1}, {0}));
  testing::expect_error([&] { read_idx_images(dir / "x.idx"); },
                        {dir / "x.idx", "0x12345678", "0x00000803", "not a uint8 IDX file"});
}

TEST(Idx, LabelsFileGivenAsImagesSaysWhichKind) {
  TempDir dir;
  testing::write_gzip(dir / "lab.gz", testing::idx_bytes(0x00000801, {3}, {1, 2, 3}));
  testing::expect_error([&] { read_idx_images(dir / "lab.gz"); },
                        {dir / "lab.gz", "0x00000801", "labels [N]", "0x00000803", "images"});
}

TEST(Idx, TruncatedPlainFileGivesExpectedAndActualBytes) {
  TempDir dir;
  auto bytes = testing::idx_bytes(0x00000803, {10, 4, 4}, testing::pattern_bytes(160, 3));
  bytes.resize(16 + 100);  // 60 bytes missing
  testing::write_bytes(dir / "cut.idx", bytes);
  testing::expect_error([&] { read_idx_images(dir / "cut.idx"); },
                        {dir / "cut.idx", "truncated", "176", "116", "10 x 4 x 4"});
}

TEST(Idx, TruncatedGzipFileGivesExpectedAndActualBytes) {
  TempDir dir;
  // Incompressible data, so cutting the .gz in half cuts the decompressed data too.
  auto bytes = testing::idx_bytes(0x00000803, {100, 16, 16}, testing::pattern_bytes(25600, 4));
  testing::write_gzip(dir / "full.gz", bytes);
  auto gz = testing::read_bytes(dir / "full.gz");
  gz.resize(gz.size() / 2);
  testing::write_bytes(dir / "cut.gz", gz);
  testing::expect_error([&] { read_idx_images(dir / "cut.gz"); },
                        {dir / "cut.gz", "truncated", "25616", "after decompression"});
}

TEST(Idx, TrailingBytesAreAnError) {
  TempDir dir;
  auto bytes = testing::idx_bytes(0x00000801, {4}, {1, 2, 3, 4});
  bytes.push_back(7);
  bytes.push_back(8);
  testing::write_bytes(dir / "long.idx", bytes);
  testing::expect_error([&] { read_idx_labels(dir / "long.idx"); },
                        {dir / "long.idx", "too long", "12", "14"});
}

TEST(Idx, ShortHeaderAndZeroDimension) {
  TempDir dir;
  testing::write_bytes(dir / "tiny.idx", {0, 0});
  testing::expect_error([&] { read_idx_labels(dir / "tiny.idx"); },
                        {dir / "tiny.idx", "2 bytes", "too short"});
  testing::write_bytes(dir / "zero.idx", testing::idx_bytes(0x00000803, {0, 28, 28}, {}));
  testing::expect_error([&] { read_idx_images(dir / "zero.idx"); },
                        {dir / "zero.idx", "dimension 0 is 0"});
}

TEST(Idx, MissingFile) {
  TempDir dir;
  testing::expect_error([&] { read_idx_images(dir / "nope.gz"); },
                        {dir / "nope.gz", "No such file"});
}

}  // namespace
}  // namespace distvae
