// Tests for io/convert/convert_idx: splits, sharding, pixel sums against the input, label checks,
// and (when installed) the real Fashion-MNIST files.
#include "io/convert/convert_idx.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "io/convert/idx.h"
#include "io/data/dataset.h"
#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

struct SyntheticIdx {
  std::vector<uint8_t> pixels, labels;
};

// n images of 6x5 (plain IDX) and their labels (gzip IDX) in dir.
SyntheticIdx write_synthetic(const TempDir& dir, const std::string& images_name, uint32_t n) {
  SyntheticIdx s;
  s.pixels = testing::pattern_bytes(n * 30, 11);
  for (uint32_t i = 0; i < n; ++i) s.labels.push_back(static_cast<uint8_t>(i % 10));
  testing::write_bytes(dir / images_name, testing::idx_bytes(0x00000803, {n, 6, 5}, s.pixels));
  testing::write_gzip(dir / "labels.gz", testing::idx_bytes(0x00000801, {n}, s.labels));
  return s;
}

TEST(ConvertIdx, ValidationSplitTakesTheLastImages) {
  TempDir dir;
  const SyntheticIdx in = write_synthetic(dir, "train-images.idx", 100);
  ConvertIdxOptions o;
  o.images_path = dir / "train-images.idx";
  o.labels_path = dir / "labels.gz";
  o.out_dir = dir / "out";
  o.prefix = "syn";
  o.val = 30;
  o.chunk_images = 16;
  o.shard_images = 32;
  const ConvertSummary s = convert_idx(o);

  EXPECT_EQ(s.height, 6);
  EXPECT_EQ(s.width, 5);
  EXPECT_EQ(s.channels, 1);
  ASSERT_EQ(s.splits.size(), 2u);
  const SplitSummary& train = s.splits[0];
  const SplitSummary& val = s.splits[1];
  EXPECT_EQ(train.split, "train");
  EXPECT_EQ(train.count, 70);
  EXPECT_EQ(val.split, "validation");
  EXPECT_EQ(val.count, 30);
  EXPECT_EQ(train.pixel_sum, testing::byte_sum(in.pixels.data(), 70 * 30));
  EXPECT_EQ(val.pixel_sum, testing::byte_sum(in.pixels.data() + 70 * 30, 30 * 30));
  EXPECT_EQ(train.files, (std::vector<std::string>{dir / "out/syn-train-00000.h5",
                                                   dir / "out/syn-train-00001.h5",
                                                   dir / "out/syn-train-00002.h5"}));
  EXPECT_EQ(val.files, (std::vector<std::string>{dir / "out/syn-validation-00000.h5"}));

  // The shards read back as the input, in order, with their labels.
  Hdf5Dataset tr(train.files);
  EXPECT_EQ(tr.info().count, 70);
  EXPECT_EQ(tr.info().files[2].count, 6);
  std::vector<uint8_t> px(70 * 30);
  tr.read_images(0, 70, px.data());
  EXPECT_TRUE(std::equal(px.begin(), px.end(), in.pixels.begin()));
  Hdf5Dataset va = Hdf5Dataset::open_glob(dir / "out/syn-validation-*.h5");
  std::vector<int32_t> lab(30);
  va.read_labels(0, 30, lab.data());
  for (int i = 0; i < 30; ++i) EXPECT_EQ(lab[i], in.labels[70 + i]);

  H5Handle f(H5Fopen(val.files[0].c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  EXPECT_EQ(h5_read_string_attr(f.get(), "split", val.files[0]), "validation");
  EXPECT_EQ(h5_read_int_attr(f.get(), "count", val.files[0]), 30);
}

TEST(ConvertIdx, SplitInferredFromTestFileName) {
  TempDir dir;
  const SyntheticIdx in = write_synthetic(dir, "t10k-images-idx3-ubyte", 20);
  ConvertIdxOptions o;
  o.images_path = dir / "t10k-images-idx3-ubyte";
  o.out_dir = dir.path();
  const ConvertSummary s = convert_idx(o);
  ASSERT_EQ(s.splits.size(), 1u);
  EXPECT_EQ(s.splits[0].split, "test");
  EXPECT_EQ(s.splits[0].files, (std::vector<std::string>{dir / "data-test-00000.h5"}));
  EXPECT_EQ(s.splits[0].pixel_sum, testing::byte_sum(in.pixels.data(), in.pixels.size()));
  EXPECT_FALSE(Hdf5Dataset({dir / "data-test-00000.h5"}).info().has_labels);
}

TEST(ConvertIdx, UninferableSplitNeedsAName) {
  TempDir dir;
  write_synthetic(dir, "faces.idx", 5);
  ConvertIdxOptions o;
  o.images_path = dir / "faces.idx";
  o.out_dir = dir.path();
  testing::expect_error([&] { convert_idx(o); }, {"faces.idx", "cannot infer the split"});
  o.split = "train";
  EXPECT_EQ(convert_idx(o).splits[0].split, "train");
}

TEST(ConvertIdx, LabelCountMustMatch) {
  TempDir dir;
  write_synthetic(dir, "train.idx", 10);
  testing::write_bytes(dir / "few.idx",
                       testing::idx_bytes(0x00000801, {9}, std::vector<uint8_t>(9)));
  ConvertIdxOptions o;
  o.images_path = dir / "train.idx";
  o.labels_path = dir / "few.idx";
  o.out_dir = dir / "out";
  testing::expect_error([&] { convert_idx(o); }, {"few.idx", "9 labels", "10 images"});
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST(ConvertIdx, ValMustLeaveTrainImages) {
  TempDir dir;
  write_synthetic(dir, "train.idx", 10);
  ConvertIdxOptions o;
  o.images_path = dir / "train.idx";
  o.out_dir = dir.path();
  o.val = 10;
  testing::expect_error([&] { convert_idx(o); }, {"train.idx", "10 images", "val (10)"});
}

// Shards of a different conversion are refused unless overwriting, and then the stale ones go;
// a rerun of the same conversion (the same key: after a kill, say) replaces its own files.
TEST(ConvertIdx, ExistingShardsNeedOverwriteAndStaleOnesGo) {
  TempDir dir;
  write_synthetic(dir, "train.idx", 50);
  ConvertIdxOptions o;
  o.images_path = dir / "train.idx";
  o.out_dir = dir.path();
  o.chunk_images = 10;
  o.shard_images = 10;
  EXPECT_EQ(convert_idx(o).splits[0].files.size(), 5u);
  EXPECT_EQ(convert_idx(o).splits[0].files.size(), 5u);  // the same conversion again
  o.shard_images = 0;
  testing::expect_error(
      [&] { convert_idx(o); },
      {"data-train-00000.h5", "already exists from a different conversion", "overwrite"});
  o.overwrite = true;
  EXPECT_EQ(convert_idx(o).splits[0].files.size(), 1u);
  // The four files of the first conversion beyond the new one are gone: a glob sees one file.
  Hdf5Dataset ds = Hdf5Dataset::open_glob(dir / "data-train-*.h5");
  EXPECT_EQ(ds.info().files.size(), 1u);
  EXPECT_EQ(ds.info().count, 50);
}

// A conversion killed before it finished (here: its completion marker never written, and the
// last shards missing) is never read as a dataset; rerunning the same command finishes it.
TEST(ConvertIdx, UnfinishedConversionIsRefusedUntilRerun) {
  TempDir dir;
  write_synthetic(dir, "train.idx", 50);
  ConvertIdxOptions o;
  o.images_path = dir / "train.idx";
  o.out_dir = dir.path();
  o.chunk_images = 10;
  o.shard_images = 10;
  convert_idx(o);
  fs::remove(dir / "data-train.done");
  fs::remove(dir / "data-train-00003.h5");
  fs::remove(dir / "data-train-00004.h5");
  testing::expect_error([&] { Hdf5Dataset::open_glob(dir / "data-train-*.h5"); },
                        {"data-train-00000.h5", "part of a conversion that did not finish",
                         "data-train.done", "Rerun the same distvae convert command"});
  convert_idx(o);
  Hdf5Dataset ds = Hdf5Dataset::open_glob(dir / "data-train-*.h5");
  EXPECT_EQ(ds.info().count, 50);
  // A deliberate subset of a finished conversion is fine: the marker lists the file.
  EXPECT_EQ(Hdf5Dataset::open_glob(dir / "data-train-0000[0-1].h5").info().count, 20);
}

// The real data set, from Debian's dataset-fashion-mnist package.
TEST(ConvertIdx, FashionMnist) {
  const std::string src = "/usr/share/datasets/fashion-mnist/";
  const std::string train_images = src + "train-images-idx3-ubyte.gz";
  const std::string test_images = src + "t10k-images-idx3-ubyte.gz";
  if (!fs::exists(train_images) || !fs::exists(test_images))
    GTEST_SKIP() << "SKIP [data]: Fashion-MNIST not installed at " << src
                 << " (apt-get install dataset-fashion-mnist)";
  TempDir dir;
  const IdxArray raw_train = read_idx_images(train_images);
  const IdxArray raw_test = read_idx_images(test_images);
  ASSERT_EQ(raw_train.dims, (std::vector<uint32_t>{60000, 28, 28}));

  ConvertIdxOptions o;
  o.images_path = train_images;
  o.labels_path = src + "train-labels-idx1-ubyte.gz";
  o.out_dir = dir.path();
  o.prefix = "fashion";
  o.val = 10000;
  const ConvertSummary tr = convert_idx(o);
  o.images_path = test_images;
  o.labels_path = src + "t10k-labels-idx1-ubyte.gz";
  o.val = 0;
  const ConvertSummary te = convert_idx(o);

  ASSERT_EQ(tr.splits.size(), 2u);
  ASSERT_EQ(te.splits.size(), 1u);
  EXPECT_EQ(tr.splits[0].count, 50000);
  EXPECT_EQ(tr.splits[1].count, 10000);
  EXPECT_EQ(te.splits[0].split, "test");
  EXPECT_EQ(te.splits[0].count, 10000);
  const size_t img = 28 * 28;
  EXPECT_EQ(tr.splits[0].pixel_sum, testing::byte_sum(raw_train.data.data(), 50000 * img));
  EXPECT_EQ(tr.splits[1].pixel_sum,
            testing::byte_sum(raw_train.data.data() + 50000 * img, 10000 * img));
  EXPECT_EQ(te.splits[0].pixel_sum, testing::byte_sum(raw_test.data.data(), raw_test.data.size()));

  // Read the validation split back chunk by chunk, as the loader will.
  Hdf5Dataset va = Hdf5Dataset::open_glob(dir / "fashion-validation-*.h5");
  EXPECT_EQ(va.info().count, 10000);
  EXPECT_TRUE(va.info().has_labels);
  std::vector<uint8_t> chunk(static_cast<size_t>(va.info().files[0].chunk_images) * img);
  uint64_t sum = 0;
  int64_t seen = 0;
  for (int64_t c = 0; c < va.info().files[0].num_chunks; ++c) {
    const int64_t n = va.read_chunk(0, c, chunk.data());
    sum += testing::byte_sum(chunk.data(), static_cast<size_t>(n) * img);
    seen += n;
  }
  EXPECT_EQ(seen, 10000);
  EXPECT_EQ(sum, tr.splits[1].pixel_sum);
}

}  // namespace
}  // namespace distvae
