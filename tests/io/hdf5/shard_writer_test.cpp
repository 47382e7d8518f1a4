// Tests for io/hdf5/shard_writer: layout, attributes, filters, streaming, atomic finish.
#include "io/hdf5/shard_writer.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "io/hdf5/h5_util.h"
#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

ShardWriterOptions small_options(const std::string& path) {
  ShardWriterOptions o;
  o.path = path;
  o.height = 3;
  o.width = 4;
  o.channels = 2;
  o.chunk_images = 8;
  o.source = "unit test";
  o.split = "train";
  return o;
}

// The filter ids of a dataset's pipeline, in order.
std::vector<H5Z_filter_t> filters_of(hid_t dset) {
  H5Handle dcpl(H5Dget_create_plist(dset));
  std::vector<H5Z_filter_t> ids;
  const int n = H5Pget_nfilters(dcpl.get());
  for (int i = 0; i < n; ++i) {
    unsigned flags = 0, config = 0;
    size_t nv = 0;
    ids.push_back(H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &nv, nullptr, 0,
                                 nullptr, &config));
  }
  return ids;
}

TEST(ShardWriter, WritesLayoutAttributesAndFilters) {
  TempDir dir;
  const std::string path = dir / "s.h5";
  ShardWriterOptions o = small_options(path);
  o.labels = LabelType::int32;
  const int64_t n = 21;  // two whole chunks of 8 and a partial one of 5
  const auto pixels = testing::pattern_bytes(static_cast<size_t>(n * 3 * 4 * 2), 5);
  std::vector<int32_t> labels(n);
  for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>(i * 1000 - 7);
  {
    ShardWriter w(o);
    // Uneven pieces: the writer must regroup them into whole chunks.
    const int64_t pieces[] = {3, 7, 1, 10};
    int64_t at = 0;
    for (int64_t p : pieces) {
      w.append(pixels.data() + at * 24, p, labels.data() + at);
      at += p;
    }
    EXPECT_EQ(w.count(), n);
    EXPECT_FALSE(fs::exists(path)) << "the shard must not appear before finish()";
    w.finish();
  }
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  H5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  ASSERT_TRUE(file.valid());
  EXPECT_EQ(h5_read_string_attr(file.get(), "source", path), "unit test");
  EXPECT_EQ(h5_read_string_attr(file.get(), "split", path), "train");
  EXPECT_EQ(h5_read_int_attr(file.get(), "height", path), 3);
  EXPECT_EQ(h5_read_int_attr(file.get(), "width", path), 4);
  EXPECT_EQ(h5_read_int_attr(file.get(), "channels", path), 2);
  EXPECT_EQ(h5_read_int_attr(file.get(), "count", path), n);
  EXPECT_EQ(h5_read_int_attr(file.get(), "format_version", path), 1);

  H5Handle images(H5Dopen2(file.get(), "images", H5P_DEFAULT));
  H5Handle space(H5Dget_space(images.get()));
  hsize_t dims[4], chunk[4];
  ASSERT_EQ(H5Sget_simple_extent_ndims(space.get()), 4);
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  EXPECT_EQ(dims[0], 21u);
  EXPECT_EQ(dims[1], 3u);
  EXPECT_EQ(dims[2], 4u);
  EXPECT_EQ(dims[3], 2u);
  H5Handle dcpl(H5Dget_create_plist(images.get()));
  ASSERT_EQ(H5Pget_chunk(dcpl.get(), 4, chunk), 4);
  EXPECT_EQ(chunk[0], 8u);
  EXPECT_EQ(chunk[1], 3u);
  EXPECT_EQ(
      filters_of(images.get()),
      (std::vector<H5Z_filter_t>{H5Z_FILTER_SHUFFLE, H5Z_FILTER_DEFLATE, H5Z_FILTER_FLETCHER32}));

  std::vector<uint8_t> back(pixels.size());
  H5Dread(images.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, back.data());
  EXPECT_EQ(back, pixels);
  H5Handle lab(H5Dopen2(file.get(), "labels", H5P_DEFAULT));
  std::vector<int32_t> lback(n);
  H5Dread(lab.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, lback.data());
  EXPECT_EQ(lback, labels);
}

TEST(ShardWriter, NoCompressionNoChecksumMeansNoFilters) {
  TempDir dir;
  ShardWriterOptions o = small_options(dir / "plain.h5");
  o.compression = Compression::none;
  o.checksum = false;
  ShardWriter w(o);
  const auto pixels = testing::pattern_bytes(24, 6);
  w.append(pixels.data(), 1);
  w.finish();
  H5Handle file(H5Fopen(o.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  H5Handle images(H5Dopen2(file.get(), "images", H5P_DEFAULT));
  EXPECT_TRUE(filters_of(images.get()).empty());
}

TEST(ShardWriter, UnfinishedWriterLeavesNothing) {
  TempDir dir;
  const std::string path = dir / "gone.h5";
  {
    ShardWriter w(small_options(path));
    const auto pixels = testing::pattern_bytes(24 * 10, 7);
    w.append(pixels.data(), 10);
    EXPECT_TRUE(fs::exists(path + ".tmp"));
  }  // destroyed without finish(), as after an exception
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST(ShardWriter, EmptyShardIsAnError) {
  TempDir dir;
  const std::string path = dir / "empty.h5";
  ShardWriter w(small_options(path));
  testing::expect_error([&] { w.finish(); }, {path, "no images"});
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST(ShardWriter, LabelTypeMustMatch) {
  TempDir dir;
  ShardWriterOptions o = small_options(dir / "l.h5");
  o.labels = LabelType::uint8;
  ShardWriter w(o);
  const auto pixels = testing::pattern_bytes(24, 8);
  testing::expect_error([&] { w.append(pixels.data(), 1); }, {"l.h5", "uint8", "none"});
  const int32_t wide = 3;
  testing::expect_error([&] { w.append(pixels.data(), 1, &wide); }, {"l.h5", "uint8", "int32"});
}

TEST(ShardWriter, MissingDirectoryAndBadSizes) {
  TempDir dir;
  testing::expect_error([&] { ShardWriter w(small_options(dir / "no/such/dir/x.h5")); },
                        {"no/such/dir", "does not exist"});
  ShardWriterOptions o = small_options(dir / "x.h5");
  o.width = 0;
  testing::expect_error([&] { ShardWriter w(o); }, {"x.h5", "3x0x2"});
  o = small_options(dir / "x.h5");
  o.chunk_images = 0;
  testing::expect_error([&] { ShardWriter w(o); }, {"x.h5", "chunk_images"});
}

TEST(ShardWriter, CompressionNames) {
  EXPECT_EQ(compression_from_string("gzip"), Compression::gzip);
  EXPECT_EQ(compression_from_string("none"), Compression::none);
  EXPECT_EQ(compression_from_string("lzf"), Compression::lzf);
  testing::expect_error([] { compression_from_string("zstd"); }, {"'zstd'", "gzip", "lzf", "none"});
}

}  // namespace
}  // namespace distvae
