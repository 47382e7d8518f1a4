// Reading a dataset stored as HDF5 shards: open and validate the files, read whole chunks.
//
// Each file holds `images` uint8 [N, H, W, C] chunked along N with whole images per chunk
// ([k, H, W, C]), and optionally `labels` (any integer type) [N]; see io/hdf5/shard_writer.h.
// Images are numbered globally in file order: file 0's images first, then file 1's, ...
//
// Threads: serial HDF5 (Debian's libhdf5) is not thread-safe. One Hdf5Dataset must be used by
// one thread at a time, and no other thread may call HDF5 meanwhile (the loader's reader thread
// owns its dataset object; nothing else in the process touches HDF5 while it reads).
//
// File locks: files are opened with HDF5's default locking. On file systems without flock
// (some Lustre / NFS mounts) HDF5 1.10 fails to open them; set HDF5_USE_FILE_LOCKING=FALSE (or
// BEST_EFFORT) in the environment there. It is not switched off in code because HDF5 refuses to
// open one file twice in a process with different locking settings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "io/data/chunk_codec.h"
#include "io/hdf5/h5_util.h"

namespace distvae {

struct ShardFileInfo {
  std::string path;
  int64_t count = 0;         // images in this file
  int64_t first = 0;         // global index of this file's first image
  int64_t chunk_images = 0;  // images per chunk; the file's last chunk may hold fewer
  int64_t num_chunks = 0;    // ceil(count / chunk_images)
  bool has_labels = false;
};

struct DatasetInfo {
  int64_t count = 0;  // images in all files
  int64_t height = 0, width = 0, channels = 0;
  bool has_labels = false;  // true when every file has `labels`
  std::vector<ShardFileInfo> files;

  int64_t image_bytes() const { return height * width * channels; }
};

// Expands a glob(3) pattern to the matching paths, sorted bytewise. Throws when nothing matches.
std::vector<std::string> expand_glob(const std::string& pattern);

struct Hdf5OpenOptions {
  // Bytes of HDF5's own raw-chunk cache per dataset (H5Pset_cache on the file access list); -1
  // keeps HDF5's default (1 MiB). A reader of whole chunks gains nothing from it, and with many
  // open files it grows with the dataset: the loader sets 0.
  int64_t chunk_cache_bytes = -1;
};

// The open shard files of one dataset. Every file is opened and validated once, up front, and
// stays open: reads never reopen a file. Move-only.
class Hdf5Dataset {
 public:
  // Opens `paths` in the given order. Throws std::runtime_error naming the file and the problem
  // (missing file, not HDF5, no `images`, wrong rank/type/chunking, a size different from the
  // first file's, empty dataset, a filter this HDF5 lacks, labels of the wrong length).
  explicit Hdf5Dataset(const std::vector<std::string>& paths, const Hdf5OpenOptions& open = {});
  // Opens every file matching a glob(3) pattern, e.g. "data/fashion-train-*.h5", sorted.
  static Hdf5Dataset open_glob(const std::string& pattern);

  Hdf5Dataset(Hdf5Dataset&&) = default;
  Hdf5Dataset& operator=(Hdf5Dataset&&) = default;
  Hdf5Dataset(const Hdf5Dataset&) = delete;
  Hdf5Dataset& operator=(const Hdf5Dataset&) = delete;

  const DatasetInfo& info() const { return info_; }

  // Reads chunk `chunk_index` of file `file_index` with one hyperslab read into
  // out: (n, H, W, C), with room for chunk_images images. Returns n: chunk_images, or fewer for
  // the file's last chunk.
  int64_t read_chunk(size_t file_index, int64_t chunk_index, uint8_t* out);
  // The same chunk as stored on disk, without decoding (H5Dread_chunk): raw is resized to its
  // stored size; filter_mask receives the filters skipped for it. Decode it with decode_chunk
  // and image_filters(file_index), on any thread. Returns the chunk's image count n as
  // read_chunk does; the decoded chunk is always chunk_images images long (the tail of a file's
  // last chunk is padding).
  int64_t read_chunk_raw(size_t file_index, int64_t chunk_index, std::vector<uint8_t>& raw,
                         uint32_t& filter_mask);
  // The filter pipeline of file `file_index`'s images.
  const std::vector<ChunkFilter>& image_filters(size_t file_index) const {
    return open_[file_index].filters;
  }
  // The labels of that chunk into out: (n). Throws if the file has no labels.
  int64_t read_chunk_labels(size_t file_index, int64_t chunk_index, int32_t* out);

  // Convenience: images [first, first + count) in global numbering into out: (count, H, W, C).
  // Ranges may span files. Reads that are not whole chunks decompress chunks they only partly
  // use; the loader reads with read_chunk.
  void read_images(int64_t first, int64_t count, uint8_t* out);
  // Labels [first, first + count) in global numbering, converted to int32. Throws if any file
  // in the range has no labels.
  void read_labels(int64_t first, int64_t count, int32_t* out);

 private:
  struct OpenFile {
    H5Handle file, images, labels;  // destroyed in reverse: the datasets close before the file
    std::string images_where, labels_where;
    std::vector<ChunkFilter> filters;  // of images
  };

  Hdf5Dataset() = default;
  void check_chunk(size_t file_index, int64_t chunk_index) const;
  void check_range(int64_t first, int64_t count) const;
  size_t file_of(int64_t global_index) const;

  DatasetInfo info_;
  std::vector<OpenFile> open_;
};

}  // namespace distvae
