// Structural fuzzing of io/data/dataset: well-formed HDF5 files, built through the HDF5 API, whose
// content is wrong for a shard (names, ranks, types, shapes, layouts, filters, attributes, links),
// plus truncated files. Each must give one clear error naming the file, what is wrong and what
// was expected, or, where the reader documents it tolerates the variation, read correctly.
// (libhdf5 itself may crash on byte-corrupted metadata, so bytes are not fuzzed here; see
// docs/fuzzing.md.)
#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "io/data/dataset.h"
#include "io/hdf5/shard_writer.h"
#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

using testing::expect_error;
using testing::TempDir;

// One dataset to create. Chunked datasets are extendible in every dimension, so any shape,
// including zero-sized ones, can be chunked.
struct Dset {
  std::string name = "images";
  hid_t type = H5T_STD_U8LE;
  std::vector<hsize_t> dims = {6, 4, 3, 1};
  std::vector<hsize_t> chunk = {2, 4, 3, 1};  // empty: contiguous
  bool scalar = false;                        // a scalar dataspace instead of dims
  bool compact = false;                       // compact layout (data in the object header)
  H5Z_filter_t optional_filter = 0;           // a filter id added with H5Z_FLAG_OPTIONAL
};

// Builds an HDF5 file through the API; every call is checked, so a broken fixture fails loudly.
class Builder {
 public:
  explicit Builder(const std::string& path)
      : file_(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) {
    ok(file_, "H5Fcreate");
  }
  ~Builder() { EXPECT_GE(H5Fclose(file_), 0); }
  Builder(const Builder&) = delete;
  Builder& operator=(const Builder&) = delete;

  Builder& dataset(const Dset& d) {
    const int rank = static_cast<int>(d.dims.size());
    std::vector<hsize_t> maxdims(d.dims.size(), H5S_UNLIMITED);
    H5Handle space(d.scalar ? H5Screate(H5S_SCALAR)
                            : H5Screate_simple(rank, d.dims.data(),
                                               d.chunk.empty() ? nullptr : maxdims.data()));
    ok(space.get(), "H5Screate");
    H5Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
    if (!d.chunk.empty()) ok(H5Pset_chunk(dcpl.get(), rank, d.chunk.data()), "H5Pset_chunk");
    if (d.compact) ok(H5Pset_layout(dcpl.get(), H5D_COMPACT), "H5Pset_layout");
    if (d.optional_filter)
      ok(H5Pset_filter(dcpl.get(), d.optional_filter, H5Z_FLAG_OPTIONAL, 0, nullptr),
         "H5Pset_filter");
    H5Handle dset(H5Dcreate2(file_, d.name.c_str(), d.type, space.get(), H5P_DEFAULT, dcpl.get(),
                             H5P_DEFAULT));
    ok(dset.get(), "H5Dcreate2 " + d.name);
    size_t n = H5Tget_size(d.type);
    if (!d.scalar)
      for (hsize_t x : d.dims) n *= x;
    std::vector<uint8_t> bytes(n, 7);
    if (n && H5Tget_class(d.type) != H5T_STRING)
      ok(H5Dwrite(dset.get(), d.type, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()), "H5Dwrite");
    return *this;
  }
  Builder& group(const std::string& name) {
    H5Handle g(H5Gcreate2(file_, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    ok(g.get(), "H5Gcreate2 " + name);
    return *this;
  }
  Builder& soft_link(const std::string& target, const std::string& name) {
    ok(H5Lcreate_soft(target.c_str(), file_, name.c_str(), H5P_DEFAULT, H5P_DEFAULT),
       "H5Lcreate_soft");
    return *this;
  }
  Builder& external_link(const std::string& file, const std::string& target,
                         const std::string& name) {
    ok(H5Lcreate_external(file.c_str(), target.c_str(), file_, name.c_str(), H5P_DEFAULT,
                          H5P_DEFAULT),
       "H5Lcreate_external");
    return *this;
  }
  Builder& int_attr(const std::string& name, int64_t v) {
    h5_write_int_attr(file_, name, v, "fixture");
    return *this;
  }
  Builder& string_attr(const std::string& name, const std::string& v) {
    h5_write_string_attr(file_, name, v, "fixture");
    return *this;
  }

 private:
  template <class T>
  static void ok(T ret, const std::string& what) {
    if (ret < 0) throw std::runtime_error("test fixture: " + what + " failed");
  }
  hid_t file_;
};

// An HDF5 string type of n bytes, and a uint8-based enum: types a shard never holds.
H5Handle string_type(size_t n) {
  H5Handle t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.get(), n);
  return t;
}
H5Handle uint8_enum() {
  H5Handle t(H5Tenum_create(H5T_NATIVE_UINT8));
  const uint8_t zero = 0, one = 1;
  H5Tenum_insert(t.get(), "off", &zero);
  H5Tenum_insert(t.get(), "on", &one);
  return t;
}

Dset labels(std::vector<hsize_t> dims = {6}, hid_t type = H5T_STD_I32LE) {
  Dset d;
  d.name = "labels";
  d.type = type;
  d.dims = std::move(dims);
  d.chunk.clear();
  return d;
}

class Hdf5Structure : public ::testing::Test {
 protected:
  TempDir dir;
  const std::string path = dir / "x.h5";
  void expect_open_error(std::initializer_list<std::string> parts) {
    expect_error([&] { Hdf5Dataset ds({path}); }, parts);
  }
};

// ---- names and object kinds ----

TEST_F(Hdf5Structure, ImagesUnderAnotherCase) {
  Dset d;
  d.name = "Images";
  Builder(path).dataset(d);
  expect_open_error({path + ": no dataset 'images'", "expected uint8 [N, H, W, C]", "'Images'"});
}

TEST_F(Hdf5Structure, ImagesInsideAGroup) {
  Dset d;
  d.name = "data/images";
  Builder(path).group("data").dataset(d);
  expect_open_error({path + ": no dataset 'images'", "'data'"});
}

TEST_F(Hdf5Structure, EmptyFileSaysSo) {
  Builder(path).int_attr("count", 6);
  expect_open_error({path + ": no dataset 'images'", "the file is empty"});
}

TEST_F(Hdf5Structure, ImagesIsAGroup) {
  Builder(path).group("images");
  expect_open_error({path + ": 'images' is a group or named type, expected a dataset"});
}

TEST_F(Hdf5Structure, LabelsIsAGroup) {
  Builder(path).dataset(Dset{}).group("labels");
  expect_open_error({path + ": 'labels' is a group or named type, expected a dataset"});
}

TEST_F(Hdf5Structure, ImagesIsADanglingSoftLink) {
  Builder(path).soft_link("/nowhere", "images");
  expect_open_error({path + ": 'images' is a link to an object that does not exist"});
}

TEST_F(Hdf5Structure, ImagesThroughASoftLinkAreRead) {
  Dset d;
  d.name = "raw";
  Builder(path).dataset(d).soft_link("/raw", "images");
  Hdf5Dataset ds({path});
  EXPECT_EQ(ds.info().count, 6);
}

TEST_F(Hdf5Structure, ImagesThroughAnExternalLinkToAMissingFile) {
  Builder(path).external_link(dir / "gone.h5", "/images", "images");
  expect_open_error(
      {path + ": 'images' is a link to an object that does not exist", "external link"});
}

// ---- ranks ----

TEST_F(Hdf5Structure, ScalarImages) {
  Dset d;
  d.scalar = true;
  d.dims = {};
  d.chunk = {};
  Builder(path).dataset(d);
  expect_open_error({path + ": dataset 'images' has rank 0 (shape [])", "expected 4"});
}

TEST_F(Hdf5Structure, Rank1Images) {
  Dset d;
  d.dims = {72};
  d.chunk = {12};
  Builder(path).dataset(d);
  expect_open_error({path + ": dataset 'images' has rank 1 (shape [72])", "[N, H, W, C]"});
}

TEST_F(Hdf5Structure, Rank5Images) {
  Dset d;
  d.dims = {6, 4, 3, 1, 1};
  d.chunk = {2, 4, 3, 1, 1};
  Builder(path).dataset(d);
  expect_open_error({path + ": dataset 'images' has rank 5 (shape [6, 4, 3, 1, 1])"});
}

TEST_F(Hdf5Structure, Rank2Labels) {
  Builder(path).dataset(Dset{}).dataset(labels({6, 1}));
  expect_open_error({path + ": dataset 'labels' has rank 2 (shape [6, 1]), expected 1 [N]"});
}

TEST_F(Hdf5Structure, TooManyLabels) {
  Builder(path).dataset(Dset{}).dataset(labels({7}));
  expect_open_error({path + ": dataset 'labels' holds 7 labels", "one per image (6)"});
}

// ---- types ----

TEST_F(Hdf5Structure, SignedImages) {
  Dset d;
  d.type = H5T_STD_I8LE;
  Builder(path).dataset(d);
  expect_open_error({path + ": dataset 'images' has type int8", "expected uint8"});
}

TEST_F(Hdf5Structure, SixteenBitImages) {
  Dset d;
  d.type = H5T_STD_U16BE;
  Builder(path).dataset(d);
  expect_open_error({path + ": dataset 'images' has type uint16", "expected uint8"});
}

TEST_F(Hdf5Structure, DoubleImages) {
  Dset d;
  d.type = H5T_IEEE_F64LE;
  Builder(path).dataset(d);
  expect_open_error({path + ": dataset 'images' has type float64", "expected uint8"});
}

TEST_F(Hdf5Structure, StringImages) {
  H5Handle t = string_type(1);
  Dset d;
  d.type = t.get();
  Builder(path).dataset(d);
  expect_open_error({path + ": dataset 'images' has type string", "expected uint8"});
}

TEST_F(Hdf5Structure, EnumImages) {
  H5Handle t = uint8_enum();
  Dset d;
  d.type = t.get();
  Builder(path).dataset(d);
  expect_open_error({path + ": dataset 'images' has type enum, expected uint8"});
}

TEST_F(Hdf5Structure, FloatLabels) {
  Builder(path).dataset(Dset{}).dataset(labels({6}, H5T_IEEE_F32LE));
  expect_open_error(
      {path + ": dataset 'labels' has type float32", "expected an integer type of at most 32"});
}

TEST_F(Hdf5Structure, SixtyFourBitLabels) {
  Builder(path).dataset(Dset{}).dataset(labels({6}, H5T_STD_I64LE));
  expect_open_error({path + ": dataset 'labels' has type int64", "at most 32 bits"});
}

TEST_F(Hdf5Structure, StringLabels) {
  H5Handle t = string_type(4);
  Builder(path).dataset(Dset{}).dataset(labels({6}, t.get()));
  expect_open_error({path + ": dataset 'labels' has type string", "integer"});
}

TEST_F(Hdf5Structure, NarrowAndBigEndianLabelsAreConverted) {
  // Any integer of at most 32 bits is a valid label type; values convert to int32.
  Builder(path).dataset(Dset{}).dataset(labels({6}, H5T_STD_I16BE));
  Hdf5Dataset ds({path});
  std::vector<int32_t> l(6, -1);
  ds.read_labels(0, 6, l.data());
  EXPECT_EQ(l, std::vector<int32_t>(6, 7 * 256 + 7));  // the fixture's bytes are all 7
}

// ---- shapes ----

TEST_F(Hdf5Structure, ZeroHeight) {
  Dset d;
  d.dims = {6, 0, 3, 1};
  d.chunk = {2, 1, 3, 1};
  Builder(path).dataset(d);
  expect_open_error({path + ": dataset 'images' has shape [6, 0, 3, 1]", "at least 1"});
}

TEST_F(Hdf5Structure, ZeroChannels) {
  Dset d;
  d.dims = {6, 4, 3, 0};
  d.chunk = {2, 4, 3, 1};
  Builder(path).dataset(d);
  expect_open_error({path + ": dataset 'images' has shape [6, 4, 3, 0]", "at least 1"});
}

TEST_F(Hdf5Structure, ZeroImagesWithLabels) {
  Dset d;
  d.dims = {0, 4, 3, 1};
  Builder(path).dataset(d).dataset(labels({0}));
  expect_open_error({path + ": dataset 'images' holds 0 images", "N > 0"});
}

TEST_F(Hdf5Structure, SecondFileWithOtherChannels) {
  const std::string other = dir / "y.h5";
  Builder(path).dataset(Dset{});
  Dset d;
  d.dims = {6, 4, 3, 3};
  d.chunk = {2, 4, 3, 3};
  Builder(other).dataset(d);
  expect_error(
      [&] {
        Hdf5Dataset ds({path, other});
      },
      {other + ": images are 4x3x3", path + " (the first file) holds 4x3x1"});
}

// ---- layouts, chunking and filters ----

TEST_F(Hdf5Structure, CompactImages) {
  Dset d;
  d.chunk = {};
  d.compact = true;
  Builder(path).dataset(d);
  expect_open_error({path + ": dataset 'images' is not chunked", "distvae convert"});
}

TEST_F(Hdf5Structure, ChunksAcrossWidth) {
  Dset d;
  d.chunk = {6, 4, 1, 1};
  Builder(path).dataset(d);
  expect_open_error(
      {path + ": dataset 'images' has chunks [6, 4, 1, 1]", "whole images per chunk [k, 4, 3, 1]"});
}

TEST_F(Hdf5Structure, ChunksLargerThanTheDatasetAreOneChunk) {
  Dset d;
  d.chunk = {16, 4, 3, 1};  // a valid layout: one partial chunk holds all 6 images
  Builder(path).dataset(d);
  Hdf5Dataset ds({path});
  EXPECT_EQ(ds.info().files[0].num_chunks, 1);
  std::vector<uint8_t> buf(16 * 12);
  EXPECT_EQ(ds.read_chunk(0, 0, buf.data()), 6);
  EXPECT_EQ(buf[0], 7);
}

TEST_F(Hdf5Structure, FilterThisLibraryLacks) {
  Dset d;
  d.optional_filter = 32004;  // LZ4's registered id; Debian's libhdf5 does not carry it
  ASSERT_LE(H5Zfilter_avail(d.optional_filter), 0);
  Builder(path).dataset(d);
  expect_open_error({path + ": dataset 'images' was written with HDF5 filter (id 32004)",
                     "cannot decode", "gzip or no compression"});
}

// ---- attributes: informational only; the datasets are the truth ----

TEST_F(Hdf5Structure, MissingAndContradictoryAttributesAreIgnored) {
  Builder(path)
      .dataset(Dset{})
      .int_attr("height", 99)
      .int_attr("count", 1000)
      .string_attr("format_version", "not a number")
      .string_attr("channels", "three");
  Hdf5Dataset ds({path});
  EXPECT_EQ(ds.info().count, 6);
  EXPECT_EQ(ds.info().height, 4);
  EXPECT_EQ(ds.info().channels, 1);
}

// ---- truncation: byte damage HDF5 must detect without crashing ----

TEST_F(Hdf5Structure, TruncatedShardNamesTheFile) {
  ShardWriterOptions o;
  o.path = path;
  o.height = 28;
  o.width = 28;
  o.channels = 1;
  o.chunk_images = 16;
  const auto pixels = testing::pattern_bytes(64 * 28 * 28, 9);
  ShardWriter w(o);
  w.append(pixels.data(), 64);
  w.finish();
  const auto size = std::filesystem::file_size(path);
  for (const uintmax_t keep : {size - 1, size / 2, uintmax_t{2048}, uintmax_t{100}}) {
    std::filesystem::resize_file(path, keep);
    SCOPED_TRACE("truncated to " + std::to_string(keep) + " of " + std::to_string(size));
    expect_error(
        [&] {
          Hdf5Dataset ds({path});
          std::vector<uint8_t> buf(64 * 28 * 28);
          ds.read_images(0, 64, buf.data());
        },
        {path + ": H5Fopen", "truncated file"});
  }
}

}  // namespace
}  // namespace distvae
