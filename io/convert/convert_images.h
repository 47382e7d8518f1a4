// Converting a folder tree of PNG / JPEG images to HDF5 shards: decode, crop, resize, in
// parallel, resumable, and split among MPI ranks by whole shards.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/convert/convert_idx.h"
#include "io/convert/image_folder.h"
#include "io/convert/image_prep.h"
#include "io/convert/shard_tasks.h"

namespace distvae {

struct ConvertImagesOptions {
  std::string input_dir;  // searched recursively for .png / .jpg / .jpeg / .jpe (any case)
  std::string out_dir;
  std::string prefix = "data";  // files are <out_dir>/<prefix>-<split>-<shard:05d>.h5
  std::string split = "train";  // the split name when val == 0
  // The last `val` files in sorted path order become split "validation", the rest `split`.
  // The split is decided by position in the file list, so an unreadable file among the last
  // `val` leaves the validation split one image short (the summary has the real counts).
  int64_t val = 0;
  // Size, crop, filter and channels (1 gray or 3 RGB). prep.size 0 keeps the images' own size,
  // which must then be the same for all.
  ImagePrep prep;
  bool labels = false;         // labels from first-level sub-folder names (see image_folder.h)
  int64_t chunk_images = 256;  // see ConvertIdxOptions::chunk_images
  Compression compression = Compression::gzip;
  bool checksum = true;
  // Images per file, counted in input files (an unreadable file leaves its shard one short);
  // 0 = one file per split. Shards are the unit of resume and of the split among ranks.
  int64_t shard_images = 0;
  // Replace shards left by a different conversion (other inputs or options) and remove shards
  // numbered past this conversion's; shards of this same conversion are kept either way.
  bool overwrite = false;
  int threads = 1;          // threads decoding and resizing; the calling thread writes the shards
  int rank = 0, world = 1;  // this process converts the shards t with t % world == rank
  std::function<void(const ConvertProgress&)> progress;  // called after every image
  std::function<void(const ShardTask&)> on_shard_done;   // after each shard this run writes
};

struct SkippedFile {
  std::string path;
  std::string reason;
};

struct ConvertImagesSummary {
  ConvertSummary written;
  std::vector<SkippedFile> skipped;  // unreadable files, in path order
  int64_t shards = 0;                // shards of the whole conversion (empty ones included)
  std::vector<std::string> removed;  // stale shards removed (overwrite)
};

// Everything decided before converting: the file list, the image size, the shards and keys.
struct ImagesConversion {
  ConvertImagesOptions options;
  ImageFolder folder;
  int64_t height = 0, width = 0, channels = 0;
  std::string reference;           // prep.size 0: the first readable file, whose size all share
  std::vector<ShardTask> tasks;    // all splits, train first
  std::vector<std::string> stale;  // to remove when complete (overwrite)
};

// Lists the files, fixes the image size and the shards, and checks the output directory (see
// prepare_output_dir). Throws naming the folder or file on every problem it can see up front.
ImagesConversion plan_images_conversion(const ConvertImagesOptions& options);

// Writes this process's shards (options.rank / world) that are not complete yet. Unreadable or
// corrupt files are skipped and recorded in their shard; an image of another size (prep.size 0)
// is an error naming it. Prints nothing.
ShardWork convert_image_shards(const ImagesConversion& plan);

// After every process has finished: removes stale shards and reads the summary back from the
// shards on disk (so it covers every rank and earlier, interrupted runs).
ConvertImagesSummary finish_images_conversion(const ImagesConversion& plan);

// The three steps in one process (rank 0 of 1 unless options say otherwise).
ConvertImagesSummary convert_images(const ConvertImagesOptions& options);

}  // namespace distvae
