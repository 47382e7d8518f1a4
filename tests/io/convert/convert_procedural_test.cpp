// Tests for io/convert/convert_procedural: the sprites shards hold the images the generator renders
// with matching factors, the shuffled order is a permutation of the grid, and conversions resume.
#include "io/convert/convert_procedural.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "io/convert/sprites.h"
#include "io/data/dataset.h"
#include "io/hdf5/h5_tables.h"
#include "io/hdf5/h5_util.h"
#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

TEST(SpriteOrder, ShuffledIsAPermutationOfTheWholeGrid) {
  const auto order = sprite_order(true, 7);
  ASSERT_EQ(int64_t(order.size()), kSpriteCount);
  std::vector<bool> seen(order.size(), false);
  for (int64_t g : order) {
    ASSERT_GE(g, 0);
    ASSERT_LT(g, kSpriteCount);
    ASSERT_FALSE(seen[size_t(g)]) << g;
    seen[size_t(g)] = true;
  }
  EXPECT_EQ(sprite_order(true, 7), order);  // deterministic
  EXPECT_NE(sprite_order(true, 8), order);
  const auto grid = sprite_order(false, 7);
  for (int64_t i = 0; i < 1000; ++i) EXPECT_EQ(grid[size_t(i)], i);
}

TEST(ConvertProcedural, ShardsHoldRenderedImagesWithTheirFactors) {
  TempDir dir;
  for (bool rgb : {false, true}) {
    ConvertProceduralOptions o;
    o.rgb = rgb;
    o.out_dir = dir / "out";
    o.max_images = 3000;
    o.val = 500;
    o.shard_images = 1024;
    o.chunk_images = 128;
    o.threads = 2;
    o.seed = 3;
    const ConvertSummary s = convert_procedural(o);
    ASSERT_EQ(s.splits.size(), 2u);
    EXPECT_EQ(s.splits[0].count, 2500);
    EXPECT_EQ(s.splits[0].files.size(), 3u);
    EXPECT_EQ(s.splits[1].count, 500);
    EXPECT_EQ(s.channels, rgb ? 3 : 1);

    const std::string prefix = rgb ? "sprites_rgb" : "sprites";
    const auto order = sprite_order(true, 3);
    int64_t pos = 0;
    for (const char* split : {"train", "validation"}) {
      for (const std::string& path :
           expand_glob(dir / ("out/" + prefix + "-" + std::string(split) + "-*.h5"))) {
        Hdf5Dataset ds({path});
        const int64_t n = ds.info().count;
        const size_t ib = size_t(ds.info().image_bytes());
        std::vector<uint8_t> px(size_t(n) * ib);
        ds.read_images(0, n, px.data());
        std::vector<int32_t> labels(static_cast<size_t>(n));
        ds.read_labels(0, n, labels.data());
        H5Handle f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
        const int F = rgb ? 7 : 5;
        EXPECT_EQ(h5_table_shape(f.get(), "factors", path), (std::vector<int64_t>{n, F}));
        const auto values = h5_read_table_f32(f.get(), "factors", path);
        const auto classes = h5_read_table_i32(f.get(), "factor_classes", path);
        const auto grid = h5_read_table_i32(f.get(), "grid_index", path);
        EXPECT_EQ(h5_read_string_attr(f.get(), "factor_names", path),
                  rgb ? "shape,scale,orientation,pos_x,pos_y,colour,background"
                      : "shape,scale,orientation,pos_x,pos_y");
        for (int64_t i = 0; i < n; i += 37) {
          const int64_t g = order[size_t(pos + i)];
          ASSERT_EQ(grid[size_t(i)], g);
          const SpriteFactors sf = sprite_factors(g, rgb, 3);
          const auto want_v = sprite_factor_values(sf, rgb);
          const auto want_c = sprite_factor_classes(sf, rgb);
          for (int k = 0; k < F; ++k) {
            EXPECT_EQ(values[size_t(i * F + k)], want_v[size_t(k)]);
            EXPECT_EQ(classes[size_t(i * F + k)], want_c[size_t(k)]);
          }
          EXPECT_EQ(labels[size_t(i)], sf.shape);
          std::vector<uint8_t> img(ib);
          render_sprite(sf, rgb, img.data());
          EXPECT_TRUE(std::equal(img.begin(), img.end(), px.begin() + long(size_t(i) * ib)));
        }
        pos += n;
      }
    }
    EXPECT_EQ(pos, 3000);
  }
}

TEST(ConvertProcedural, AnInterruptedConversionResumes) {
  TempDir dir;
  ConvertProceduralOptions o;
  o.out_dir = dir / "out";
  o.max_images = 2000;
  o.shard_images = 500;
  o.on_shard_done = [](const ShardTask& t) {
    if (t.index == 1) throw std::runtime_error("interrupted");
  };
  EXPECT_THROW(convert_procedural(o), std::runtime_error);
  o.on_shard_done = nullptr;
  const ProceduralConversion plan = plan_procedural_conversion(o);
  const ShardWork w = convert_procedural_shards(plan);
  EXPECT_EQ(w.resumed, 2);
  EXPECT_EQ(w.written, 2);
  EXPECT_EQ(finish_procedural_conversion(plan).splits[0].count, 2000);
  // Another seed is another dataset: the existing shards are refused.
  o.seed = 99;
  testing::expect_error([&] { convert_procedural(o); }, {"sprites-train-00000.h5", "another"});
}

}  // namespace
}  // namespace distvae
