// Converting IDX files (MNIST / Fashion-MNIST) to HDF5 shards, with an optional validation split.
#include "io/convert/convert_idx.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "core/hash.h"
#include "io/convert/idx.h"
#include "io/convert/shard_tasks.h"

namespace distvae {
namespace {

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

std::string infer_split(const std::string& images_path) {
  const std::string name = std::filesystem::path(images_path).filename().string();
  if (starts_with(name, "t10k") || starts_with(name, "test")) return "test";
  if (starts_with(name, "train")) return "train";
  throw std::runtime_error(images_path + ": cannot infer the split from the file name (expected " +
                           "it to start with 'train', 't10k' or 'test'); give the split " +
                           "explicitly (train, validation or test)");
}

// A fingerprint of everything that decides the shards: the options and each input's name, size
// and modification time (a rerun of the same command after a kill is recognized and may replace
// what the killed run left).
std::string conversion_key(const ConvertIdxOptions& o) {
  std::ostringstream s;
  s << "idx v1 val=" << o.val << " split=" << o.split << " chunk=" << o.chunk_images
    << " compression=" << to_string(o.compression) << " checksum=" << o.checksum
    << " shard_images=" << o.shard_images;
  uint64_t h = fnv1a(s.str());
  for (const std::string& path : {o.images_path, o.labels_path}) {
    if (path.empty()) continue;
    std::error_code ec;
    const uint64_t bytes = std::filesystem::file_size(path, ec);
    const auto mtime = std::filesystem::last_write_time(path, ec).time_since_epoch().count();
    h = fnv1a(path, h);
    h = fnv1a(&bytes, sizeof bytes, h);
    h = fnv1a(&mtime, sizeof mtime, h);
  }
  return hex64(h);
}

}  // namespace

ConvertSummary convert_idx(const ConvertIdxOptions& o) {
  if (o.images_path.empty()) throw std::invalid_argument("convert_idx: no images file given");
  if (o.val < 0)
    throw std::invalid_argument("convert_idx: val must be 0 or positive, got " +
                                std::to_string(o.val));
  if (o.val > 0 && !o.split.empty())
    throw std::invalid_argument("convert_idx: split '" + o.split + "' was given with val " +
                                std::to_string(o.val) + "; with val > 0 the splits are always " +
                                "'train' and 'validation', so leave split empty");

  const IdxArray images = read_idx_images(o.images_path);
  const int64_t n = images.dims[0];
  std::optional<IdxArray> labels;
  if (!o.labels_path.empty()) {
    labels = read_idx_labels(o.labels_path);
    if (labels->dims[0] != images.dims[0])
      throw std::runtime_error(o.labels_path + " holds " + std::to_string(labels->dims[0]) +
                               " labels but " + o.images_path + " holds " + std::to_string(n) +
                               " images; they must match one to one");
  }
  if (o.val >= n)
    throw std::runtime_error(o.images_path + " holds " + std::to_string(n) + " images; val (" +
                             std::to_string(o.val) +
                             ") must be smaller so the train split is not empty");

  ConvertSummary summary;
  summary.height = images.dims[1];
  summary.width = images.dims[2];
  summary.channels = 1;  // IDX images are grayscale: [N, H, W] is stored as [N, H, W, 1]

  SplitShardsOptions base;
  base.out_dir = o.out_dir;
  base.prefix = o.prefix;
  base.source = "idx images=" + o.images_path + (labels ? " labels=" + o.labels_path : "");
  base.height = summary.height;
  base.width = summary.width;
  base.channels = summary.channels;
  base.chunk_images = o.chunk_images;
  base.compression = o.compression;
  base.checksum = o.checksum;
  base.shard_images = o.shard_images;
  base.labels = labels ? LabelType::uint8 : LabelType::none;
  base.overwrite = o.overwrite;
  base.convert_key = conversion_key(o);

  // (split, first image, count), in file order.
  struct Range {
    std::string split;
    int64_t first, count;
  };
  std::vector<Range> ranges;
  if (o.val > 0) {
    ranges.push_back({"train", 0, n - o.val});
    ranges.push_back({"validation", n - o.val, o.val});
  } else {
    ranges.push_back({o.split.empty() ? infer_split(o.images_path) : o.split, 0, n});
  }

  // Every writer is created (and checks for existing files) before any image is written.
  std::vector<std::unique_ptr<SplitShardWriter>> writers;
  for (const Range& r : ranges) {
    SplitShardsOptions so = base;
    so.split = r.split;
    writers.push_back(std::make_unique<SplitShardWriter>(so));
  }
  const int64_t image_bytes = summary.height * summary.width;
  for (size_t i = 0; i < ranges.size(); ++i) {
    const uint8_t* img = images.data.data() + ranges[i].first * image_bytes;
    if (labels)
      writers[i]->append(img, ranges[i].count, labels->data.data() + ranges[i].first);
    else
      writers[i]->append(img, ranges[i].count);
    summary.splits.push_back(writers[i]->finish());
  }
  return summary;
}

}  // namespace distvae
