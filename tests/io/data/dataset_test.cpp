// Tests for io/data/dataset: round trips through the shard writer, whole-chunk reads, and one
// clear error per malformed input.
#include "io/data/dataset.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "io/hdf5/shard_writer.h"
#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

using testing::TempDir;

constexpr int64_t kH = 5, kW = 3, kC = 1, kImage = kH * kW * kC;

// Writes a shard of n images of 5x3x1 with the given chunk; returns the pixels written.
std::vector<uint8_t> write_shard(const std::string& path, int64_t n, int64_t chunk, uint32_t seed,
                                 bool labels = true, int64_t h = kH, int64_t w = kW) {
  ShardWriterOptions o;
  o.path = path;
  o.height = h;
  o.width = w;
  o.channels = kC;
  o.chunk_images = chunk;
  o.labels = labels ? LabelType::uint8 : LabelType::none;
  o.split = "train";
  const auto pixels = testing::pattern_bytes(static_cast<size_t>(n * h * w * kC), seed);
  std::vector<uint8_t> lab(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) lab[i] = static_cast<uint8_t>((i + seed) % 10);
  ShardWriter wr(o);
  if (labels)
    wr.append(pixels.data(), n, lab.data());
  else
    wr.append(pixels.data(), n);
  wr.finish();
  return pixels;
}

TEST(Hdf5Dataset, RoundTripAcrossFilesWithWholeChunkReads) {
  TempDir dir;
  const auto a = write_shard(dir / "a.h5", 37, 8, 1);  // chunks 8,8,8,8,5
  const auto b = write_shard(dir / "b.h5", 20, 5, 2);  // chunks 5,5,5,5
  Hdf5Dataset ds({dir / "a.h5", dir / "b.h5"});
  const DatasetInfo& info = ds.info();
  EXPECT_EQ(info.count, 57);
  EXPECT_EQ(info.height, kH);
  EXPECT_EQ(info.width, kW);
  EXPECT_EQ(info.channels, kC);
  EXPECT_TRUE(info.has_labels);
  ASSERT_EQ(info.files.size(), 2u);
  EXPECT_EQ(info.files[0].count, 37);
  EXPECT_EQ(info.files[0].chunk_images, 8);
  EXPECT_EQ(info.files[0].num_chunks, 5);
  EXPECT_EQ(info.files[1].first, 37);
  EXPECT_EQ(info.files[1].chunk_images, 5);
  EXPECT_EQ(info.files[1].num_chunks, 4);

  // Every chunk is whole except each file's last; together they are the file's pixels.
  std::vector<uint8_t> chunk(8 * kImage);
  std::vector<uint8_t> joined;
  for (int64_t c = 0; c < 5; ++c) {
    const int64_t n = ds.read_chunk(0, c, chunk.data());
    EXPECT_EQ(n, c < 4 ? 8 : 5) << "chunk " << c;
    joined.insert(joined.end(), chunk.begin(), chunk.begin() + n * kImage);
  }
  EXPECT_EQ(joined, a);
  EXPECT_EQ(ds.read_chunk(1, 3, chunk.data()), 5);
  EXPECT_EQ(0, std::memcmp(chunk.data(), b.data() + 15 * kImage, 5 * kImage));

  // A range spanning both files.
  std::vector<uint8_t> all(57 * kImage);
  ds.read_images(0, 57, all.data());
  EXPECT_EQ(0, std::memcmp(all.data(), a.data(), a.size()));
  EXPECT_EQ(0, std::memcmp(all.data() + a.size(), b.data(), b.size()));
  std::vector<uint8_t> mid(10 * kImage);
  ds.read_images(32, 10, mid.data());
  EXPECT_EQ(0, std::memcmp(mid.data(), all.data() + 32 * kImage, mid.size()));

  std::vector<int32_t> labels(57);
  ds.read_labels(0, 57, labels.data());
  EXPECT_EQ(labels[0], 1);
  EXPECT_EQ(labels[36], (36 + 1) % 10);
  EXPECT_EQ(labels[37], 2);
  std::vector<int32_t> chunk_labels(8);
  EXPECT_EQ(ds.read_chunk_labels(0, 4, chunk_labels.data()), 5);
  EXPECT_EQ(chunk_labels[0], (32 + 1) % 10);
}

TEST(Hdf5Dataset, OutOfRangeReads) {
  TempDir dir;
  write_shard(dir / "a.h5", 10, 4, 1);
  Hdf5Dataset ds({dir / "a.h5"});
  std::vector<uint8_t> buf(16 * kImage);
  testing::expect_error([&] { ds.read_chunk(0, 3, buf.data()); },
                        {"a.h5", "chunk index 3", "3 chunks"});
  testing::expect_error([&] { ds.read_chunk(1, 0, buf.data()); }, {"file index 1"});
  testing::expect_error([&] { ds.read_images(5, 6, buf.data()); }, {"[5, 11)", "10 images"});
}

TEST(Hdf5Dataset, GlobIsSortedAndLabelsMayBeAbsent) {
  TempDir dir;
  write_shard(dir / "d-01.h5", 3, 2, 1, false);
  write_shard(dir / "d-00.h5", 4, 2, 2, false);
  Hdf5Dataset ds = Hdf5Dataset::open_glob(dir / "d-*.h5");
  ASSERT_EQ(ds.info().files.size(), 2u);
  EXPECT_EQ(ds.info().files[0].path, dir / "d-00.h5");
  EXPECT_EQ(ds.info().files[0].count, 4);
  EXPECT_FALSE(ds.info().has_labels);
  std::vector<int32_t> l(1);
  testing::expect_error([&] { ds.read_labels(0, 1, l.data()); },
                        {"d-00.h5", "no dataset 'labels'"});
}

TEST(Hdf5Dataset, ChecksumCatchesCorruptionOnDisk) {
  TempDir dir;
  const std::string path = dir / "c.h5";
  write_shard(path, 16, 8, 3, false);
  // Find chunk 1 on disk and flip one of its bytes.
  haddr_t addr = 0;
  hsize_t size = 0;
  {
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "images", H5P_DEFAULT);
    hsize_t offset[4];
    unsigned mask = 0;
    hid_t space = H5Dget_space(d);
    ASSERT_GE(H5Dget_chunk_info(d, space, 1, offset, &mask, &addr, &size), 0);
    H5Sclose(space);
    H5Dclose(d);
    H5Fclose(f);
  }
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(addr + size / 2));
    char byte = 0;
    f.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x5a);
    f.seekp(static_cast<std::streamoff>(addr + size / 2));
    f.write(&byte, 1);
  }
  Hdf5Dataset ds({path});
  std::vector<uint8_t> buf(8 * kImage);
  EXPECT_EQ(ds.read_chunk(0, 0, buf.data()), 8);  // the other chunk is intact
  testing::expect_error([&] { ds.read_chunk(0, 1, buf.data()); },
                        {path + ": /images: checksum mismatch (Fletcher32) reading rows 8..15",
                         "corrupt on disk", "distvae convert"});
  testing::expect_error([&] { ds.read_images(4, 8, buf.data()); },  // spans both chunks
                        {path, "checksum mismatch (Fletcher32)"});
}

// ---- validation: one clear message per problem, naming the file ----

TEST(Hdf5DatasetValidation, MissingImagesListsWhatIsThere) {
  TempDir dir;
  testing::write_raw_h5(dir / "x.h5", "pixels", H5T_STD_U8LE, {4, 2, 2, 1}, {2, 2, 2, 1});
  testing::expect_error([&] { Hdf5Dataset ds({dir / "x.h5"}); },
                        {dir / "x.h5", "no dataset 'images'", "'pixels'"});
}

TEST(Hdf5DatasetValidation, Rank3Images) {
  TempDir dir;
  testing::write_raw_h5(dir / "x.h5", "images", H5T_STD_U8LE, {4, 28, 28}, {2, 28, 28});
  testing::expect_error(
      [&] { Hdf5Dataset ds({dir / "x.h5"}); },
      {dir / "x.h5: dataset 'images' has rank 3", "[4, 28, 28]", "expected 4 [N, H, W, C]"});
}

TEST(Hdf5DatasetValidation, FloatImages) {
  TempDir dir;
  testing::write_raw_h5(dir / "x.h5", "images", H5T_IEEE_F32LE, {4, 2, 2, 1}, {2, 2, 2, 1});
  testing::expect_error([&] { Hdf5Dataset ds({dir / "x.h5"}); },
                        {dir / "x.h5", "type float32", "expected uint8"});
}

TEST(Hdf5DatasetValidation, ContiguousImages) {
  TempDir dir;
  testing::write_raw_h5(dir / "x.h5", "images", H5T_STD_U8LE, {4, 2, 2, 1}, {});
  testing::expect_error([&] { Hdf5Dataset ds({dir / "x.h5"}); }, {dir / "x.h5", "not chunked"});
}

TEST(Hdf5DatasetValidation, ChunksSplittingImages) {
  TempDir dir;
  testing::write_raw_h5(dir / "x.h5", "images", H5T_STD_U8LE, {4, 8, 8, 1}, {4, 4, 4, 1});
  testing::expect_error([&] { Hdf5Dataset ds({dir / "x.h5"}); },
                        {dir / "x.h5", "chunks [4, 4, 4, 1]", "[k, 8, 8, 1]"});
}

TEST(Hdf5DatasetValidation, EmptyImages) {
  TempDir dir;
  testing::write_raw_h5(dir / "x.h5", "images", H5T_STD_U8LE, {0, 2, 2, 1}, {2, 2, 2, 1});
  testing::expect_error([&] { Hdf5Dataset ds({dir / "x.h5"}); }, {dir / "x.h5", "holds 0 images"});
}

TEST(Hdf5DatasetValidation, MismatchedImageSizeAcrossFiles) {
  TempDir dir;
  write_shard(dir / "a.h5", 4, 2, 1, true, 5, 3);
  write_shard(dir / "b.h5", 4, 2, 1, true, 5, 4);
  testing::expect_error(
      [&] {
        Hdf5Dataset ds({dir / "a.h5", dir / "b.h5"});
      },
      {dir / "b.h5", "5x4x1", dir / "a.h5", "5x3x1", "one image size"});
}

TEST(Hdf5DatasetValidation, LabelsOfTheWrongLength) {
  TempDir dir;
  const std::string path = dir / "x.h5";
  write_shard(path, 4, 2, 1, false);
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hsize_t n = 3;
  hid_t s = H5Screate_simple(1, &n, nullptr);
  hid_t d = H5Dcreate2(f, "labels", H5T_STD_U8LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dclose(d);
  H5Sclose(s);
  H5Fclose(f);
  testing::expect_error([&] { Hdf5Dataset ds({path}); },
                        {path, "'labels' holds 3 labels", "one per image (4)"});
}

TEST(Hdf5DatasetValidation, EmptyGlob) {
  TempDir dir;
  testing::expect_error([&] { Hdf5Dataset::open_glob(dir / "nothing-*.h5"); },
                        {"no files match", dir / "nothing-*.h5"});
  testing::expect_error([&] { Hdf5Dataset::open_glob(dir / "nodir/*.h5"); },
                        {"no files match", "does not exist"});
}

TEST(Hdf5DatasetValidation, NonexistentAndNonHdf5Files) {
  TempDir dir;
  testing::expect_error([&] { Hdf5Dataset ds({dir / "missing.h5"}); },
                        {dir / "missing.h5", "no such file"});
  testing::write_bytes(dir / "text.h5", {'h', 'e', 'l', 'l', 'o'});
  testing::expect_error([&] { Hdf5Dataset ds({dir / "text.h5"}); },
                        {dir / "text.h5", "not an HDF5 file"});
  testing::expect_error([&] { Hdf5Dataset ds(std::vector<std::string>{}); }, {"no HDF5 shard"});
}

TEST(Hdf5DatasetValidation, SameFileTwice) {
  TempDir dir;
  write_shard(dir / "a.h5", 4, 2, 1);
  testing::expect_error(
      [&] {
        Hdf5Dataset ds({dir / "a.h5", dir / "a.h5"});
      },
      {dir / "a.h5", "listed twice"});
}

}  // namespace
}  // namespace distvae
