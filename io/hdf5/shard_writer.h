// Writing one HDF5 shard: `images` uint8 [N, H, W, C] chunked along N, optional `labels` [N].
//
// File layout (format_version 1), what io/data/dataset.h reads:
//   /images   uint8 [N, H, W, C], chunks of [chunk_images, H, W, C], filters: shuffle + deflate(4)
//             when compressed with gzip (LZF, HDF5 filter 32000, for lzf), then Fletcher32 when
//             checksummed
//   /labels   optional, uint8 or int32 [N], chunks of [chunk_images], same filters
//   attributes on the file's root group: source, split (strings); height, width, channels,
//             count, format_version (int64); convert_key (string) when a converter sets it
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/hdf5/h5_util.h"

namespace distvae {

// lzf is h5py's LZF filter (id 32000), loaded by HDF5 as a plugin: it is only usable where that
// plugin loads (Debian 12's hdf5-plugin-lzf does not: its library lacks liblzf's symbols); the
// writer checks and says so.
enum class Compression { none, gzip, lzf };
enum class LabelType { none, uint8, int32 };

// "gzip", "lzf" or "none"; throws naming the accepted values otherwise.
Compression compression_from_string(const std::string& name);
const char* to_string(Compression c);

struct ShardWriterOptions {
  std::string path;  // the final name; the file is written as path + ".tmp" and renamed
  int64_t height = 0, width = 0, channels = 0;
  // Images per chunk: the unit of every read (see io/convert/convert_idx.h for why 256).
  int64_t chunk_images = 256;
  Compression compression = Compression::gzip;
  bool checksum = true;  // Fletcher32 per chunk: a flipped bit on disk becomes a read error
  LabelType labels = LabelType::none;
  std::string source;  // where the images came from, e.g. "idx:train-images-idx3-ubyte.gz"
  std::string split;   // "train", "validation" or "test"
  // A fingerprint of the conversion that writes the shard (the attribute convert_key, checked
  // against the split's completion marker, io/hdf5/completion_marker.h); empty: none.
  std::string convert_key;
  // Called by finish() with the open temporary file, after the images and the count attribute
  // and before the file is closed and renamed: extra datasets and attributes written here are
  // part of the atomic shard. `where` names the temporary file for error messages.
  std::function<void(hid_t file, const std::string& where)> before_close;
};

// Streams images into one shard. Images are buffered up to one chunk and written a whole chunk
// at a time into an extendible dataset, so memory use is one chunk whatever the shard size.
// The file only appears under its real name after finish(); if the writer is destroyed before
// (an exception, a crash), the temporary file is removed and nothing is left under `path`.
class ShardWriter {
 public:
  explicit ShardWriter(ShardWriterOptions options);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // images: (count, H, W, C) uint8. labels: (count), required iff options.labels says so, of
  // the matching type.
  void append(const uint8_t* images, int64_t count);
  void append(const uint8_t* images, int64_t count, const uint8_t* labels);
  void append(const uint8_t* images, int64_t count, const int32_t* labels);

  // Writes the last partial chunk and the count attribute, flushes and syncs the file, and
  // renames it to its final path. Throws if no image was appended (a shard holds N > 0).
  void finish();

  int64_t count() const { return written_ + buffered_; }
  const std::string& path() const { return options_.path; }

 private:
  void append_impl(const uint8_t* images, int64_t count, const void* labels, LabelType type);
  void flush_chunk();
  void abandon() noexcept;

  ShardWriterOptions options_;
  std::string tmp_path_;
  int64_t image_bytes_ = 0;
  size_t label_bytes_ = 0;  // bytes per label: 0, 1 or 4
  H5Handle file_, images_, labels_;
  std::vector<uint8_t> image_buf_;  // one chunk: (chunk_images, H, W, C)
  std::vector<uint8_t> label_buf_;  // one chunk of labels, raw bytes
  int64_t written_ = 0;             // images already in the file
  int64_t buffered_ = 0;            // images waiting in image_buf_
  bool finished_ = false;
};

}  // namespace distvae
