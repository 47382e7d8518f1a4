// Tests for io/convert/split_shards: file naming, rolling to a new file, all-or-nothing on failure.
#include "io/convert/split_shards.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

SplitShardsOptions options(const TempDir& dir) {
  SplitShardsOptions o;
  o.out_dir = dir / "out";
  o.prefix = "p";
  o.split = "test";
  o.height = 2;
  o.width = 2;
  o.channels = 1;
  o.chunk_images = 2;
  o.shard_images = 4;
  return o;
}

TEST(SplitShards, PathFormat) {
  EXPECT_EQ(shard_path("d", "fashion", "train", 3), "d/fashion-train-00003.h5");
  EXPECT_EQ(shard_path("/x/", "a", "validation", 12345), "/x/a-validation-12345.h5");
}

TEST(SplitShards, RollsToANewFileEveryShardImages) {
  TempDir dir;
  SplitShardWriter w(options(dir));
  const auto px = testing::pattern_bytes(9 * 4, 1);
  w.append(px.data(), 3);
  w.append(px.data() + 3 * 4, 6);
  const SplitSummary s = w.finish();
  EXPECT_EQ(s.split, "test");
  EXPECT_EQ(s.count, 9);
  EXPECT_EQ(s.pixel_sum, testing::byte_sum(px.data(), px.size()));
  EXPECT_EQ(s.files,
            (std::vector<std::string>{dir / "out/p-test-00000.h5", dir / "out/p-test-00001.h5",
                                      dir / "out/p-test-00002.h5"}));
}

TEST(SplitShards, UnfinishedSplitLeavesNoFiles) {
  TempDir dir;
  {
    SplitShardWriter w(options(dir));
    const auto px = testing::pattern_bytes(6 * 4, 2);
    w.append(px.data(), 6);  // one complete file, one in progress
    EXPECT_TRUE(fs::exists(dir / "out/p-test-00000.h5"));
  }
  EXPECT_TRUE(fs::is_empty(dir / "out"));
}

TEST(SplitShards, BadNames) {
  TempDir dir;
  SplitShardsOptions o = options(dir);
  o.split = "a/b";
  testing::expect_error([&] { SplitShardWriter w(o); }, {"split 'a/b'", "no '/'"});
  o = options(dir);
  o.prefix = "";
  testing::expect_error([&] { SplitShardWriter w(o); }, {"prefix ''"});
}

}  // namespace
}  // namespace distvae
