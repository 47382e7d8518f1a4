// Shard file names and the completion marker each split's shards share.
#include "io/hdf5/shard_name.h"

#include <gtest/gtest.h>

#include "io/hdf5/completion_marker.h"

namespace distvae {
namespace {

TEST(ShardName, IndexOfAShardOfTheStem) {
  EXPECT_EQ(shard_index("fmnist-train-00000.h5", "fmnist-train-"), 0);
  EXPECT_EQ(shard_index("fmnist-train-00012.h5", "fmnist-train-"), 12);
  EXPECT_EQ(shard_index("fmnist-train-99999.h5", "fmnist-train-"), 99999);
}

TEST(ShardName, OtherFilesAreNotShards) {
  EXPECT_EQ(shard_index("fmnist-test-00012.h5", "fmnist-train-"), -1);    // another split
  EXPECT_EQ(shard_index("fmnist-train-0001a.h5", "fmnist-train-"), -1);   // not digits
  EXPECT_EQ(shard_index("fmnist-train-000120.h5", "fmnist-train-"), -1);  // six digits
  EXPECT_EQ(shard_index("fmnist-train-00012.h5.tmp", "fmnist-train-"), -1);
  EXPECT_EQ(shard_index("fmnist-train-00012.hdf", "fmnist-train-"), -1);
  EXPECT_EQ(shard_index("fmnist-train-00012.h5", "fmnist-"), -1);  // the split is part of the stem
}

TEST(ShardName, StemOfAShardName) {
  EXPECT_EQ(shard_stem("fmnist-train-00012.h5"), "fmnist-train-");
  EXPECT_EQ(shard_stem("a-b-c-validation-00001.h5"), "a-b-c-validation-");
  EXPECT_EQ(shard_stem("-00001.h5"), "");  // nothing before the digits
  EXPECT_EQ(shard_stem("fmnist-train00012.h5"), "");
  EXPECT_EQ(shard_stem("fmnist-train-0001x.h5"), "");
  EXPECT_EQ(shard_stem("x.h5"), "");
}

TEST(ShardName, CompletionMarkerIsPerSplit) {
  EXPECT_EQ(completion_marker_path("/d/fmnist-train-00003.h5"), "/d/fmnist-train.done");
  EXPECT_EQ(completion_marker_path("fmnist-validation-00000.h5"), "fmnist-validation.done");
  EXPECT_EQ(completion_marker_path("/d/not-a-shard.h5"), "");
}

}  // namespace
}  // namespace distvae
