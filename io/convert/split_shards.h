// Writing one split (train / validation / test) of a dataset as numbered shard files:
// <out_dir>/<prefix>-<split>-<index:05d>.h5, a new file every `shard_images` images.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/hdf5/shard_writer.h"

namespace distvae {

struct SplitShardsOptions {
  std::string out_dir;
  std::string prefix = "data";
  std::string split;   // also the `split` attribute of every file
  std::string source;  // the `source` attribute of every file
  int64_t height = 0, width = 0, channels = 0;
  int64_t chunk_images = 256;
  Compression compression = Compression::gzip;
  bool checksum = true;
  // Images per file; 0 puts the whole split in one file. A multiple of chunk_images keeps every
  // file but the last made of whole chunks.
  int64_t shard_images = 0;
  LabelType labels = LabelType::none;
  // Existing <prefix>-<split>-NNNNN.h5 files are an error unless they were written by this same
  // conversion (the same convert_key: an earlier run that was killed, or that finished) or
  // overwrite is set; then they are replaced, and stale higher-numbered ones (from an earlier run
  // with more shards) are removed once the new files are complete, so a glob never mixes two
  // conversions.
  bool overwrite = false;
  // The conversion's fingerprint, written into every shard; finish() then writes the split's
  // completion marker (io/hdf5/completion_marker.h). Empty: neither.
  std::string convert_key;
};

// What a converter wrote for one split; pixel_sum lets a test compare against the input.
struct SplitSummary {
  std::string split;
  int64_t count = 0;
  uint64_t pixel_sum = 0;
  std::vector<std::string> files;
};

// <out_dir>/<prefix>-<split>-<index:05d>.h5
std::string shard_path(const std::string& out_dir, const std::string& prefix,
                       const std::string& split, int64_t index);

class SplitShardWriter {
 public:
  // Creates out_dir if needed; throws if shard files of this prefix and split exist and
  // overwrite is off.
  explicit SplitShardWriter(SplitShardsOptions options);
  ~SplitShardWriter();
  SplitShardWriter(const SplitShardWriter&) = delete;
  SplitShardWriter& operator=(const SplitShardWriter&) = delete;

  // images: (count, H, W, C); labels (count) of the type the options declare, or none.
  void append(const uint8_t* images, int64_t count);
  void append(const uint8_t* images, int64_t count, const uint8_t* labels);
  void append(const uint8_t* images, int64_t count, const int32_t* labels);

  // Completes the last file and writes the split's completion marker. A split that received no
  // images writes no file (count 0).
  // A writer destroyed before finish() (an exception mid-conversion) removes the files it
  // completed, so a failed conversion leaves no partial split behind.
  SplitSummary finish();

 private:
  template <typename Label>
  void append_impl(const uint8_t* images, int64_t count, const Label* labels);
  void open_next();
  std::string marker_path() const;

  SplitShardsOptions options_;
  std::unique_ptr<ShardWriter> current_;
  SplitSummary summary_;
  std::vector<std::string> existing_;  // matching files present before this writer started
  bool finished_ = false;
};

}  // namespace distvae
