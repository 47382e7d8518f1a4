// Writing one HDF5 shard: `images` uint8 [N, H, W, C] chunked along N, optional `labels` [N].
#include "io/hdf5/shard_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace distvae {
namespace {

constexpr H5Z_filter_t kLzfFilter = 32000;  // h5py's registered id
constexpr int kDeflateLevel = 4;  // most of level 9's ratio on image data at a fraction of the time
constexpr int64_t kFormatVersion = 1;
// HDF5 cannot store a chunk of 4 GiB or more.
constexpr uint64_t kMaxChunkBytes = (uint64_t{1} << 32) - 1;

// Creation properties shared by images and labels: chunking plus the filter pipeline. The order
// matters: shuffle regroups bytes so deflate compresses multi-byte values better (a no-op for
// uint8 images, a gain for int32 labels), and Fletcher32 comes last so it checksums the bytes as
// stored on disk.
H5Handle make_dcpl(int rank, const hsize_t* chunk, const ShardWriterOptions& o,
                   const std::string& where) {
  H5Handle dcpl(H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), where));
  H5_CHECK(H5Pset_chunk(dcpl.get(), rank, chunk), where);
  if (o.compression == Compression::gzip) {
    H5_CHECK(H5Pset_shuffle(dcpl.get()), where);
    H5_CHECK(H5Pset_deflate(dcpl.get(), kDeflateLevel), where);
  } else if (o.compression == Compression::lzf) {
    // Optional, as h5py sets it: a chunk LZF cannot shrink is stored as it is.
    H5_CHECK(H5Pset_filter(dcpl.get(), kLzfFilter, H5Z_FLAG_OPTIONAL, 0, nullptr), where);
  }
  if (o.checksum) H5_CHECK(H5Pset_fletcher32(dcpl.get()), where);
  // Every element is written exactly once, so pre-filling chunks with zeros is wasted work.
  H5_CHECK(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), where);
  return dcpl;
}

// An extendible dataset of rank `rank`, starting with 0 images.
H5Handle create_extendible(hid_t file, const char* name, hid_t file_type, int rank,
                           const hsize_t* inner, const ShardWriterOptions& o,
                           const std::string& where) {
  hsize_t dims[4] = {0, 0, 0, 0}, maxdims[4] = {H5S_UNLIMITED, 0, 0, 0}, chunk[4];
  chunk[0] = static_cast<hsize_t>(o.chunk_images);
  for (int i = 1; i < rank; ++i) dims[i] = maxdims[i] = chunk[i] = inner[i - 1];
  H5Handle space(H5_CHECK(H5Screate_simple(rank, dims, maxdims), where));
  H5Handle dcpl = make_dcpl(rank, chunk, o, where);
  return H5Handle(H5_CHECK(
      H5Dcreate2(file, name, file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), where));
}

// Grows dataset `dset` (first dimension) to `first + count` and writes `count` items there.
void write_rows(hid_t dset, hid_t mem_type, int rank, int64_t first, int64_t count,
                const void* data, const std::string& where) {
  hsize_t dims[4];
  H5Handle old_space(H5_CHECK(H5Dget_space(dset), where));
  H5_CHECK(H5Sget_simple_extent_dims(old_space.get(), dims, nullptr), where);
  dims[0] = static_cast<hsize_t>(first + count);
  H5_CHECK(H5Dset_extent(dset, dims), where);

  H5Handle file_space(H5_CHECK(H5Dget_space(dset), where));
  hsize_t start[4] = {static_cast<hsize_t>(first), 0, 0, 0};
  hsize_t block[4];
  std::copy(dims, dims + rank, block);
  block[0] = static_cast<hsize_t>(count);
  H5_CHECK(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, block, nullptr),
           where);
  H5Handle mem_space(H5_CHECK(H5Screate_simple(rank, block, nullptr), where));
  H5_CHECK(H5Dwrite(dset, mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, data), where);
}

void fsync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error(path + ": cannot open for fsync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw std::runtime_error(path + ": fsync failed: " + std::strerror(err));
}

const char* label_type_name(LabelType t) {
  switch (t) {
    case LabelType::uint8:
      return "uint8";
    case LabelType::int32:
      return "int32";
    default:
      return "none";
  }
}

}  // namespace

Compression compression_from_string(const std::string& name) {
  if (name == "gzip") return Compression::gzip;
  if (name == "lzf") return Compression::lzf;
  if (name == "none") return Compression::none;
  throw std::runtime_error("unknown compression '" + name + "': expected 'gzip', 'lzf' or 'none'");
}

const char* to_string(Compression c) {
  return c == Compression::gzip ? "gzip" : c == Compression::lzf ? "lzf" : "none";
}

ShardWriter::ShardWriter(ShardWriterOptions options)
    : options_(std::move(options)), tmp_path_(options_.path + ".tmp") {
  const ShardWriterOptions& o = options_;
  if (o.path.empty()) throw std::invalid_argument("ShardWriter: empty output path");
  if (o.height < 1 || o.width < 1 || o.channels < 1)
    throw std::invalid_argument(o.path + ": image size " + std::to_string(o.height) + "x" +
                                std::to_string(o.width) + "x" + std::to_string(o.channels) +
                                " (H x W x C): every dimension must be at least 1");
  if (o.chunk_images < 1)
    throw std::invalid_argument(o.path + ": chunk_images must be at least 1, got " +
                                std::to_string(o.chunk_images));
  image_bytes_ = o.height * o.width * o.channels;
  const uint64_t chunk_bytes = static_cast<uint64_t>(o.chunk_images * image_bytes_);
  if (chunk_bytes > kMaxChunkBytes)
    throw std::invalid_argument(o.path + ": a chunk of " + std::to_string(o.chunk_images) +
                                " images is " + std::to_string(chunk_bytes) +
                                " bytes; HDF5 chunks must stay under 4 GiB: lower chunk_images");
  const std::filesystem::path parent = std::filesystem::path(o.path).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent))
    throw std::runtime_error(o.path + ": cannot write shard: directory '" + parent.string() +
                             "' does not exist");
  label_bytes_ = o.labels == LabelType::uint8 ? 1 : o.labels == LabelType::int32 ? 4 : 0;

  H5QuietErrors quiet;
  if (o.compression == Compression::gzip &&
      H5_CHECK(H5Zfilter_avail(H5Z_FILTER_DEFLATE), tmp_path_) <= 0)
    throw std::runtime_error(o.path + ": this HDF5 library has no deflate (gzip) filter; write " +
                             "with compression 'none'");
  // H5Zfilter_avail also tries to load the filter from HDF5's plugin directories.
  if (o.compression == Compression::lzf && H5_CHECK(H5Zfilter_avail(kLzfFilter), tmp_path_) <= 0)
    throw std::runtime_error(
        o.path + ": compression 'lzf' needs HDF5 filter " + std::to_string(kLzfFilter) +
        " (LZF), which this HDF5 library cannot load: no working LZF plugin in HDF5_PLUGIN_PATH "
        "or the default plugin directory (Debian 12's hdf5-plugin-lzf package does not load: its "
        "library lacks liblzf). Use compression 'gzip' (or 'none'); see docs/datasets.md");
  try {
    file_.reset(
        H5_CHECK(H5Fcreate(tmp_path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), tmp_path_));
    const hsize_t inner[3] = {static_cast<hsize_t>(o.height), static_cast<hsize_t>(o.width),
                              static_cast<hsize_t>(o.channels)};
    images_ = create_extendible(file_.get(), "images", H5T_STD_U8LE, 4, inner, o,
                                tmp_path_ + ": /images");
    if (o.labels != LabelType::none)
      labels_ = create_extendible(file_.get(), "labels",
                                  o.labels == LabelType::uint8 ? H5T_STD_U8LE : H5T_STD_I32LE, 1,
                                  nullptr, o, tmp_path_ + ": /labels");
    h5_write_string_attr(file_.get(), "source", o.source, tmp_path_);
    h5_write_string_attr(file_.get(), "split", o.split, tmp_path_);
    h5_write_int_attr(file_.get(), "height", o.height, tmp_path_);
    h5_write_int_attr(file_.get(), "width", o.width, tmp_path_);
    h5_write_int_attr(file_.get(), "channels", o.channels, tmp_path_);
    h5_write_int_attr(file_.get(), "format_version", kFormatVersion, tmp_path_);
  } catch (...) {
    abandon();
    throw;
  }
  image_buf_.resize(static_cast<size_t>(chunk_bytes));
  label_buf_.resize(static_cast<size_t>(o.chunk_images) * label_bytes_);
}

ShardWriter::~ShardWriter() {
  if (!finished_) abandon();
}

void ShardWriter::append(const uint8_t* images, int64_t count) {
  append_impl(images, count, nullptr, LabelType::none);
}

void ShardWriter::append(const uint8_t* images, int64_t count, const uint8_t* labels) {
  append_impl(images, count, labels, LabelType::uint8);
}

void ShardWriter::append(const uint8_t* images, int64_t count, const int32_t* labels) {
  append_impl(images, count, labels, LabelType::int32);
}

void ShardWriter::append_impl(const uint8_t* images, int64_t count, const void* labels,
                              LabelType type) {
  if (finished_)
    throw std::logic_error(options_.path + ": append after finish() or after a failed write");
  if (count < 0) throw std::invalid_argument(options_.path + ": append of a negative count");
  if (type != options_.labels)
    throw std::invalid_argument(options_.path + ": the shard was created with labels '" +
                                label_type_name(options_.labels) + "' but append() was given '" +
                                label_type_name(type) + "' labels");
  const auto* label_bytes = static_cast<const uint8_t*>(labels);
  int64_t done = 0;
  while (done < count) {
    const int64_t n = std::min(count - done, options_.chunk_images - buffered_);
    std::memcpy(image_buf_.data() + buffered_ * image_bytes_, images + done * image_bytes_,
                static_cast<size_t>(n * image_bytes_));
    if (label_bytes_)
      std::memcpy(label_buf_.data() + static_cast<size_t>(buffered_) * label_bytes_,
                  label_bytes + static_cast<size_t>(done) * label_bytes_,
                  static_cast<size_t>(n) * label_bytes_);
    buffered_ += n;
    done += n;
    if (buffered_ == options_.chunk_images) flush_chunk();
  }
}

void ShardWriter::flush_chunk() {
  if (buffered_ == 0) return;
  H5QuietErrors quiet;
  try {
    write_rows(images_.get(), H5T_NATIVE_UINT8, 4, written_, buffered_, image_buf_.data(),
               tmp_path_ + ": /images");
    if (label_bytes_)
      write_rows(labels_.get(), label_bytes_ == 1 ? H5T_NATIVE_UINT8 : H5T_NATIVE_INT32, 1,
                 written_, buffered_, label_buf_.data(), tmp_path_ + ": /labels");
  } catch (...) {
    // A failed write (disk full) leaves the shard unusable: remove it rather than keep a file
    // whose contents no longer match what the caller appended.
    abandon();
    finished_ = true;
    throw;
  }
  written_ += buffered_;
  buffered_ = 0;
}

void ShardWriter::finish() {
  if (finished_) throw std::logic_error(options_.path + ": finish() called twice");
  if (count() == 0) {
    abandon();
    finished_ = true;
    throw std::runtime_error(options_.path + ": no images were appended; a shard must hold at " +
                             "least one image");
  }
  flush_chunk();
  H5QuietErrors quiet;
  try {
    h5_write_int_attr(file_.get(), "count", written_, tmp_path_);
    if (!options_.convert_key.empty())
      h5_write_string_attr(file_.get(), "convert_key", options_.convert_key, tmp_path_);
    if (options_.before_close) options_.before_close(file_.get(), tmp_path_);
    labels_.close(tmp_path_ + ": /labels");
    images_.close(tmp_path_ + ": /images");
    file_.close(tmp_path_);  // flushes metadata; an error here (disk full) must not be ignored
    fsync_file(tmp_path_);
    if (std::rename(tmp_path_.c_str(), options_.path.c_str()) != 0)
      throw std::runtime_error(tmp_path_ + ": cannot rename to " + options_.path + ": " +
                               std::strerror(errno));
  } catch (...) {
    abandon();
    finished_ = true;
    throw;
  }
  finished_ = true;
}

void ShardWriter::abandon() noexcept {
  labels_.reset();
  images_.reset();
  file_.reset();
  std::remove(tmp_path_.c_str());
}

}  // namespace distvae
