// Tests for lzf shards: where HDF5 can load an LZF filter (id 32000) they round-trip; where it
// cannot (Debian 12 as shipped) the writer refuses up front with an error saying what to do.
#include <gtest/gtest.h>

#include <filesystem>

#include "io/data/dataset.h"
#include "io/hdf5/shard_writer.h"
#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

TEST(LzfShard, RoundTripsOrIsRefusedWithAClearError) {
  testing::TempDir dir;
  ShardWriterOptions o;
  o.path = dir / "lzf.h5";
  o.height = 4, o.width = 4, o.channels = 1, o.chunk_images = 8;
  o.compression = Compression::lzf;
  const auto px = testing::pattern_bytes(20 * 16, 3);
  H5QuietErrors quiet;
  if (H5Zfilter_avail(32000) > 0) {
    ShardWriter w(o);
    w.append(px.data(), 20);
    w.finish();
    Hdf5Dataset ds({o.path});
    std::vector<uint8_t> back(px.size());
    ds.read_images(0, 20, back.data());
    EXPECT_EQ(back, px);
  } else {
    testing::expect_error([&] { ShardWriter w(o); },
                          {o.path, "'lzf'", "32000", "gzip", "docs/datasets.md"});
    EXPECT_FALSE(std::filesystem::exists(o.path + ".tmp"));
  }
}

}  // namespace
}  // namespace distvae
