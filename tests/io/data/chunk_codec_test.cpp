// Tests for io/data/chunk_codec: chunks read as stored and decoded in our code equal what HDF5
// itself decodes, for every filter combination distvae writes, skipped optional filters included;
// our Fletcher32 equals HDF5's; damage is detected.
#include "io/data/chunk_codec.h"

#include <gtest/gtest.h>

#include <fstream>

#include "io/data/dataset.h"
#include "io/hdf5/shard_writer.h"
#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

using testing::TempDir;

std::string write_shard(const TempDir& dir, const std::string& name, Compression c, bool checksum,
                        const std::vector<uint8_t>& px, int64_t n, int64_t chunk) {
  ShardWriterOptions o;
  o.path = dir / name;
  o.height = 5, o.width = 3, o.channels = 7;  // 105 bytes per image: odd chunk sizes too
  o.chunk_images = chunk;
  o.compression = c;
  o.checksum = checksum;
  ShardWriter w(o);
  w.append(px.data(), n);
  w.finish();
  return o.path;
}

TEST(ChunkCodec, DecodesEveryChunkExactlyAsHdf5Does) {
  TempDir dir;
  const int64_t n = 50, chunk = 7, ib = 105;  // the last chunk is partial (1 image)
  std::vector<uint8_t> smooth(static_cast<size_t>(n * ib));
  for (size_t i = 0; i < smooth.size(); ++i) smooth[i] = uint8_t((i / 50) % 7);
  std::vector<uint8_t> noise =
      testing::pattern_bytes(size_t(n * ib), 11);  // deflate cannot shrink it
  int files = 0;
  for (const std::vector<uint8_t>* px : {&smooth, &noise})
    for (Compression c : {Compression::gzip, Compression::none})
      for (bool checksum : {true, false}) {
        const std::string path =
            write_shard(dir, "s" + std::to_string(files++) + ".h5", c, checksum, *px, n, chunk);
        Hdf5Dataset ds({path});
        const auto& filters = ds.image_filters(0);
        EXPECT_TRUE(can_decode(filters));
        EXPECT_EQ(filters.size(), size_t(c == Compression::gzip ? 2 : 0) + (checksum ? 1 : 0));
        std::vector<uint8_t> want(size_t(chunk * ib)), got(size_t(chunk * ib)), raw, scratch;
        for (int64_t k = 0; k < ds.info().files[0].num_chunks; ++k) {
          const int64_t m = ds.read_chunk(0, k, want.data());
          uint32_t mask = 0;
          EXPECT_EQ(ds.read_chunk_raw(0, k, raw, mask), m);
          decode_chunk(filters, raw.data(), raw.size(), mask, 1, got.data(), got.size(), scratch,
                       path);
          ASSERT_TRUE(std::equal(want.begin(), want.begin() + m * ib, got.begin()))
              << path << " chunk " << k;
          ASSERT_TRUE(std::equal(px->begin() + k * chunk * ib, px->begin() + (k * chunk + m) * ib,
                                 got.begin()));
        }
      }
}

TEST(ChunkCodec, FiltersSkippedForAChunkAreNotUndone) {
  // HDF5 1.10's deflate never fails (it stores a larger output), so skipped filters come from
  // other writers: an optional filter that failed is recorded in the chunk's filter mask. Build
  // such a chunk by hand for the pipeline shuffle, deflate, fletcher32 with deflate (bit 1)
  // skipped: the data as is, then its checksum.
  TempDir dir;
  const auto px = testing::pattern_bytes(2 * 105, 4);
  const std::string path = write_shard(dir, "m.h5", Compression::gzip, true, px, 2, 2);
  Hdf5Dataset ds({path});
  std::vector<uint8_t> raw(px);
  const uint32_t sum = hdf5_fletcher32(raw.data(), raw.size());
  for (int b = 0; b < 4; ++b) raw.push_back(static_cast<uint8_t>(sum >> (8 * b)));
  std::vector<uint8_t> out(px.size()), scratch;
  decode_chunk(ds.image_filters(0), raw.data(), raw.size(), 1u << 1, 1, out.data(), out.size(),
               scratch, path);
  EXPECT_EQ(out, px);
  // Without the mask the same bytes are not valid deflate data.
  EXPECT_THROW(decode_chunk(ds.image_filters(0), raw.data(), raw.size(), 0, 1, out.data(),
                            out.size(), scratch, path),
               std::runtime_error);
}

TEST(ChunkCodec, Fletcher32MatchesHdf5AndDamageIsDetected) {
  TempDir dir;
  const auto px = testing::pattern_bytes(4 * 105, 2);
  const std::string path = write_shard(dir, "f.h5", Compression::none, true, px, 4, 4);
  Hdf5Dataset ds({path});
  std::vector<uint8_t> raw, out(4 * 105), scratch;
  uint32_t mask = 0;
  ds.read_chunk_raw(0, 0, raw, mask);
  ASSERT_EQ(raw.size(), 4u * 105u + 4u);  // the data, then HDF5's checksum (little-endian)
  const uint32_t stored = uint32_t(raw[420]) | uint32_t(raw[421]) << 8 | uint32_t(raw[422]) << 16 |
                          uint32_t(raw[423]) << 24;
  EXPECT_EQ(hdf5_fletcher32(raw.data(), 420), stored);
  EXPECT_EQ(hdf5_fletcher32(raw.data(), 419) == hdf5_fletcher32(raw.data(), 420), false);
  raw[100] ^= 1;
  testing::expect_error(
      [&] {
        decode_chunk(ds.image_filters(0), raw.data(), raw.size(), mask, 1, out.data(), out.size(),
                     scratch, "where.h5");
      },
      {"where.h5", "Fletcher32"});

  // Damaged deflate data without a checksum.
  const std::string gz =
      write_shard(dir, "g.h5", Compression::gzip, false, std::vector<uint8_t>(4 * 105, 9), 4, 4);
  Hdf5Dataset dz({gz});
  dz.read_chunk_raw(0, 0, raw, mask);
  for (size_t i = 2; i < raw.size(); ++i) raw[i] ^= 0x55;
  testing::expect_error(
      [&] {
        decode_chunk(dz.image_filters(0), raw.data(), raw.size(), mask, 1, out.data(), out.size(),
                     scratch, "g.h5");
      },
      {"g.h5", "deflate"});
  // Cut short, and with only the trailing Adler-32 checksum damaged.
  for (int damage = 0; damage < 2; ++damage) {
    dz.read_chunk_raw(0, 0, raw, mask);
    if (damage == 0) raw.resize(raw.size() / 2);
    if (damage == 1) raw.back() ^= 1;
    testing::expect_error(
        [&] {
          decode_chunk(dz.image_filters(0), raw.data(), raw.size(), mask, 1, out.data(), out.size(),
                       scratch, "g.h5");
        },
        {"g.h5", "deflate"});
  }
}

TEST(ChunkCodec, UnshufflesMultiByteElements) {
  // An int32 dataset with shuffle + deflate, as labels are written: raw chunks decode with
  // element size 4 to what H5Dread returns.
  TempDir dir;
  const std::string path = dir / "i.h5";
  const hsize_t dims[1] = {100}, chunk[1] = {32};
  std::vector<int32_t> v(100);
  for (int i = 0; i < 100; ++i) v[size_t(i)] = i * 7919 - 300000;
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t sp = H5Screate_simple(1, dims, nullptr);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 1, chunk);
  H5Pset_shuffle(dcpl);
  H5Pset_deflate(dcpl, 4);
  hid_t d = H5Dcreate2(f, "x", H5T_STD_I32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  const auto filters = read_filter_pipeline(dcpl, path);
  ASSERT_TRUE(can_decode(filters));
  for (hsize_t k = 0; k < 4; ++k) {
    const hsize_t offset[1] = {k * 32};
    hsize_t nbytes = 0;
    ASSERT_GE(H5Dget_chunk_storage_size(d, offset, &nbytes), 0);
    std::vector<uint8_t> raw(nbytes), scratch;
    uint32_t mask = 0;
    ASSERT_GE(H5Dread_chunk(d, H5P_DEFAULT, offset, &mask, raw.data()), 0);
    std::vector<int32_t> got(32);
    decode_chunk(filters, raw.data(), raw.size(), mask, 4, reinterpret_cast<uint8_t*>(got.data()),
                 128, scratch, path);
    for (hsize_t i = 0; i < 32 && k * 32 + i < 100; ++i)
      EXPECT_EQ(got[i], v[k * 32 + i]) << "chunk " << k << " element " << i;
  }
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(sp);
  H5Fclose(f);
}

}  // namespace
}  // namespace distvae
