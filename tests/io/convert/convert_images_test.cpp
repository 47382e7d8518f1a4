// Tests for io/convert/convert_images: a folder tree of PNGs and JPEGs to shards, corrupt files
// skipped and named, size mismatches rejected, channel conversion, resizing, labels from folders,
// shard counts, resume after an interruption, ranks writing disjoint shards, thread-count
// invariance.
#include "io/convert/convert_images.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "io/data/dataset.h"
#include "io/hdf5/h5_tables.h"
#include "io/hdf5/h5_util.h"
#include "io/image/jpeg.h"
#include "io/image/png.h"
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
  o.prep.channels = 1;
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

// A labelled tree of mixed JPEG / PNG files of several sizes, with corrupt ones:
//   in/<class>/img<k>.{jpg,png} for classes birds, cats, dogs; in/readme.txt (ignored)
//   corrupt: in/cats/trunc.jpg (cut in half), in/dogs/noise.jpg (random bytes),
//            in/birds/empty.png (0 bytes)
struct Tree {
  std::vector<std::string> files;    // every image file, sorted
  std::vector<std::string> corrupt;  // sorted
  std::vector<int> labels;           // per file
};

Tree make_tree(const TempDir& dir, int per_class) {
  Tree t;
  const char* classes[] = {"birds", "cats", "dogs"};
  const std::pair<int, int> sizes[] = {{40, 30}, {50, 50}, {23, 61}, {64, 48}};
  for (int c = 0; c < 3; ++c) {
    fs::create_directories(dir / ("in/" + std::string(classes[c])));
    for (int k = 0; k < per_class; ++k) {
      const auto [w, h] = sizes[(c + k) % 4];
      const auto px = testing::pattern_bytes(size_t(w * h * 3), uint32_t(100 * c + k));
      char name[64];
      std::snprintf(name, sizeof name, "in/%s/img%03d.%s", classes[c], k, k % 2 ? "png" : "jpg");
      if (k % 2)
        write_png(dir / name, px.data(), w, h, 3);
      else
        write_jpeg(dir / name, px.data(), w, h, 3, 90);
    }
  }
  const auto px = testing::pattern_bytes(32 * 32 * 3, 5);
  write_jpeg(dir / "in/cats/trunc.jpg", px.data(), 32, 32, 3, 90);
  auto bytes = testing::read_bytes(dir / "in/cats/trunc.jpg");
  bytes.resize(bytes.size() / 2);
  testing::write_bytes(dir / "in/cats/trunc.jpg", bytes);
  testing::write_bytes(dir / "in/dogs/noise.jpg", testing::pattern_bytes(700, 8));
  testing::write_bytes(dir / "in/birds/empty.png", {});
  testing::write_bytes(dir / "in/readme.txt", {'x'});
  for (const auto& e : fs::recursive_directory_iterator(dir / "in"))
    if (e.is_regular_file() && e.path().extension() != ".txt") t.files.push_back(e.path());
  std::sort(t.files.begin(), t.files.end());
  t.corrupt = {dir / "in/birds/empty.png", dir / "in/cats/trunc.jpg", dir / "in/dogs/noise.jpg"};
  for (const auto& f : t.files)
    t.labels.push_back(f.find("/birds/") != std::string::npos  ? 0
                       : f.find("/cats/") != std::string::npos ? 1
                                                               : 2);
  return t;
}

ConvertImagesOptions tree_options(const TempDir& dir, const std::string& out) {
  ConvertImagesOptions o;
  o.input_dir = dir / "in";
  o.out_dir = dir / out;
  o.prep.size = 16;
  o.prep.crop_center = true;
  o.prep.channels = 3;
  o.labels = true;
  o.chunk_images = 4;
  o.shard_images = 5;
  o.threads = 3;
  return o;
}

// Every image and label of the shards matching `glob`, in file order.
struct Contents {
  std::vector<uint8_t> pixels;
  std::vector<int32_t> labels;
  int64_t count = 0;
};
Contents read_all(const std::string& glob) {
  Hdf5Dataset ds = Hdf5Dataset::open_glob(glob);
  Contents c;
  c.count = ds.info().count;
  c.pixels.resize(size_t(c.count * ds.info().image_bytes()));
  ds.read_images(0, c.count, c.pixels.data());
  if (ds.info().has_labels) {
    c.labels.resize(size_t(c.count));
    ds.read_labels(0, c.count, c.labels.data());
  }
  return c;
}

TEST(ConvertImages, MixedJpegAndPngAreResizedLabelledAndShardedWithCorruptFilesNamed) {
  TempDir dir;
  const Tree t = make_tree(dir, 7);  // 21 good + 3 corrupt = 24 files
  ASSERT_EQ(t.files.size(), 24u);
  const ConvertImagesSummary s = convert_images(tree_options(dir, "out"));

  EXPECT_EQ(s.shards, 5);  // ceil(24 / 5)
  ASSERT_EQ(s.written.splits.size(), 1u);
  EXPECT_EQ(s.written.splits[0].count, 21);
  EXPECT_EQ(s.written.splits[0].files.size(), 5u);
  EXPECT_EQ(s.written.height, 16);
  EXPECT_EQ(s.written.width, 16);
  ASSERT_EQ(s.skipped.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(s.skipped[i].path, t.corrupt[i]);
  EXPECT_NE(s.skipped[0].reason.find("empty"), std::string::npos) << s.skipped[0].reason;
  EXPECT_NE(s.skipped[1].reason.find("corrupt JPEG"), std::string::npos) << s.skipped[1].reason;
  EXPECT_NE(s.skipped[2].reason.find("JPEG"), std::string::npos) << s.skipped[2].reason;

  // Image k of the shards is the k-th readable file, prepared, with its folder's label.
  const Contents c = read_all(dir / "out/data-train-*.h5");
  ASSERT_EQ(c.count, 21);
  const ConvertImagesOptions o = tree_options(dir, "out");
  size_t k = 0;
  uint64_t sum = 0;
  for (size_t f = 0; f < t.files.size(); ++f) {
    if (std::find(t.corrupt.begin(), t.corrupt.end(), t.files[f]) != t.corrupt.end()) continue;
    const Image want = load_prepared_image(t.files[f], o.prep);
    ASSERT_EQ(want.pixels.size(), 16u * 16u * 3u);
    EXPECT_TRUE(std::equal(want.pixels.begin(), want.pixels.end(),
                           c.pixels.begin() + long(k * want.pixels.size())))
        << t.files[f];
    EXPECT_EQ(c.labels[k], t.labels[f]) << t.files[f];
    sum += testing::byte_sum(want.pixels.data(), want.pixels.size());
    ++k;
  }
  EXPECT_EQ(s.written.splits[0].pixel_sum, sum);

  // The class names travel with every shard.
  H5Handle f(H5Fopen(s.written.splits[0].files[0].c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  EXPECT_EQ(h5_read_text(f.get(), "label_names", "test"), "birds\ncats\ndogs\n");
}

TEST(ConvertImages, ARerunAfterAnInterruptionKeepsFinishedShardsAndMatchesAFreshRun) {
  TempDir dir;
  make_tree(dir, 7);
  // Interrupted after two shards; a crash mid-way through the third leaves its temporary file.
  ConvertImagesOptions o = tree_options(dir, "out");
  int done = 0;
  o.on_shard_done = [&](const ShardTask& t) {
    if (++done == 2) {
      testing::write_bytes(t.path.substr(0, t.path.size() - 8) + "00002.h5.tmp", {1, 2, 3});
      throw std::runtime_error("interrupted");
    }
  };
  EXPECT_THROW(convert_images(o), std::runtime_error);
  ASSERT_TRUE(fs::exists(dir / "out/data-train-00000.h5"));
  ASSERT_TRUE(fs::exists(dir / "out/data-train-00001.h5"));
  ASSERT_FALSE(fs::exists(dir / "out/data-train-00002.h5"));
  const auto t0 = fs::last_write_time(dir / "out/data-train-00000.h5");
  const auto t1 = fs::last_write_time(dir / "out/data-train-00001.h5");

  o.on_shard_done = nullptr;
  const ImagesConversion plan = plan_images_conversion(o);
  const ShardWork w = convert_image_shards(plan);
  EXPECT_EQ(w.resumed, 2);
  EXPECT_EQ(w.written, 3);
  const ConvertImagesSummary s = finish_images_conversion(plan);
  EXPECT_EQ(s.written.splits[0].count, 21);
  EXPECT_EQ(s.skipped.size(), 3u);  // also those recorded in the shards of the first run
  EXPECT_EQ(fs::last_write_time(dir / "out/data-train-00000.h5"), t0);  // not redone
  EXPECT_EQ(fs::last_write_time(dir / "out/data-train-00001.h5"), t1);

  const ConvertImagesSummary fresh = convert_images(tree_options(dir, "fresh"));
  const Contents a = read_all(dir / "out/data-train-*.h5");
  const Contents b = read_all(dir / "fresh/data-train-*.h5");
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(s.written.splits[0].pixel_sum, fresh.written.splits[0].pixel_sum);

  // A third run finds everything complete.
  const ShardWork again = convert_image_shards(plan_images_conversion(tree_options(dir, "out")));
  EXPECT_EQ(again.resumed, 5);
  EXPECT_EQ(again.written, 0);
}

TEST(ConvertImages, ShardsOfAnotherConversionAreAnErrorUnlessOverwriting) {
  TempDir dir;
  make_tree(dir, 7);
  convert_images(tree_options(dir, "out"));
  ConvertImagesOptions o = tree_options(dir, "out");
  o.prep.size = 8;  // other options: other contents
  testing::expect_error([&] { convert_images(o); },
                        {dir / "out/data-train-00000.h5", "another conversion", "--overwrite"});
  // Fewer, larger shards with overwrite: the old ones past the new count are removed.
  o.overwrite = true;
  o.shard_images = 12;
  const ConvertImagesSummary s = convert_images(o);
  EXPECT_EQ(s.shards, 2);
  EXPECT_EQ(s.removed.size(), 3u);
  EXPECT_FALSE(fs::exists(dir / "out/data-train-00002.h5"));
  EXPECT_EQ(read_all(dir / "out/data-train-*.h5").count, 21);
  // Without overwrite, a leftover shard numbered past the plan is refused too.
  fs::copy_file(dir / "out/data-train-00000.h5", dir / "out/data-train-00007.h5");
  o.overwrite = false;
  testing::expect_error([&] { convert_images(o); }, {dir / "out/data-train-00007.h5", "beyond"});
}

TEST(ConvertImages, RanksWriteDisjointShardsThatTogetherEqualOneRank) {
  TempDir dir;
  make_tree(dir, 7);
  const int world = 3;
  int64_t written = 0;
  for (int r = 0; r < world; ++r) {
    ConvertImagesOptions o = tree_options(dir, "multi");
    o.rank = r, o.world = world;
    const ShardWork w = convert_image_shards(plan_images_conversion(o));
    EXPECT_EQ(w.written, r < 2 ? 2 : 1) << "rank " << r;  // shards 0..4 dealt round robin
    written += w.written;
  }
  EXPECT_EQ(written, 5);
  const ConvertImagesSummary s =
      finish_images_conversion(plan_images_conversion(tree_options(dir, "multi")));
  EXPECT_EQ(s.skipped.size(), 3u);
  convert_images(tree_options(dir, "single"));
  const Contents a = read_all(dir / "multi/data-train-*.h5");
  const Contents b = read_all(dir / "single/data-train-*.h5");
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_EQ(a.labels, b.labels);
}

TEST(ConvertImages, TheThreadCountDoesNotChangeTheOutput) {
  TempDir dir;
  make_tree(dir, 5);
  ConvertImagesOptions o = tree_options(dir, "one");
  o.threads = 1;
  o.labels = false;
  o.prep.crop_center = false;
  o.prep.filter = ResizeFilter::bilinear;
  o.prep.channels = 1;
  convert_images(o);
  o.out_dir = dir / "many";
  o.threads = 7;
  convert_images(o);
  const Contents a = read_all(dir / "one/data-train-*.h5");
  const Contents b = read_all(dir / "many/data-train-*.h5");
  EXPECT_EQ(a.count, 15);
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_TRUE(a.labels.empty());
}

TEST(ConvertImages, AShardOfOnlyUnreadableFilesIsRecordedAndResumed) {
  TempDir dir;
  fs::create_directories(dir / "in");
  const auto px = testing::pattern_bytes(8 * 8, 1);
  write_png(dir / "in/a.png", px.data(), 8, 8, 1);
  write_png(dir / "in/b.png", px.data(), 8, 8, 1);
  testing::write_bytes(dir / "in/c.png", {1, 2, 3});
  testing::write_bytes(dir / "in/d.png", {4, 5, 6});
  write_png(dir / "in/e.png", px.data(), 8, 8, 1);
  ConvertImagesOptions o;
  o.input_dir = dir / "in";
  o.out_dir = dir / "out";
  o.prep.channels = 1;
  o.shard_images = 2;  // shards {a, b}, {c, d}, {e}
  const ConvertImagesSummary s = convert_images(o);
  EXPECT_EQ(s.shards, 3);
  EXPECT_EQ(s.written.splits[0].count, 3);
  EXPECT_EQ(s.written.splits[0].files.size(), 2u);
  ASSERT_EQ(s.skipped.size(), 2u);
  EXPECT_EQ(s.skipped[1].path, dir / "in/d.png");
  EXPECT_TRUE(fs::exists(dir / "out/data-train-00001.h5.empty"));
  EXPECT_EQ(read_all(dir / "out/data-train-*.h5").count, 3);
  EXPECT_EQ(convert_image_shards(plan_images_conversion(o)).resumed, 3);
}

TEST(ConvertImages, BadOptionsAreErrors) {
  TempDir dir;
  make_folder(dir);
  ConvertImagesOptions o;
  o.input_dir = dir / "in";
  o.out_dir = dir / "out";
  o.prep.crop_center = true;  // without a size
  testing::expect_error([&] { convert_images(o); }, {"crop", "size"});
  o.prep.crop_center = false;
  o.prep.channels = 2;
  testing::expect_error([&] { convert_images(o); }, {"channels", "2"});
  o.prep.channels = 1;
  o.labels = true;  // a.png sits directly in in/
  testing::expect_error([&] { convert_images(o); }, {dir / "in/a.png", "sub-folder"});
}

}  // namespace
}  // namespace distvae
