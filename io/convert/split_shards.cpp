// Writing one split (train / validation / test) of a dataset as numbered shard files.
#include "io/convert/split_shards.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numeric>
#include <stdexcept>

#include "io/hdf5/completion_marker.h"
#include "io/hdf5/h5_util.h"
#include "io/hdf5/shard_name.h"

namespace distvae {
namespace {

namespace fs = std::filesystem;

// The shard files of one prefix and split already in out_dir, sorted.
std::vector<std::string> existing_shards(const std::string& out_dir, const std::string& prefix,
                                         const std::string& split) {
  std::vector<std::string> found;
  std::error_code ec;
  if (!fs::is_directory(out_dir, ec)) return found;
  const std::string stem = prefix + "-" + split + "-";
  for (const fs::directory_entry& e : fs::directory_iterator(out_dir)) {
    if (shard_index(e.path().filename().string(), stem) >= 0) found.push_back(e.path().string());
  }
  std::sort(found.begin(), found.end());
  return found;
}

// Whether the shard at path carries this conversion key (false for an empty key, a shard without
// one, or a file that cannot be read).
bool written_by(const std::string& path, const std::string& key) {
  if (key.empty()) return false;
  try {
    H5QuietErrors quiet;
    const hid_t fid = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fid < 0) return false;
    H5Handle f(fid);
    return h5_has_attr(f.get(), "convert_key", path) &&
           h5_read_string_attr(f.get(), "convert_key", path) == key;
  } catch (const std::exception&) {
    return false;
  }
}

void check_name(const std::string& what, const std::string& value) {
  if (value.empty() || value.find('/') != std::string::npos)
    throw std::invalid_argument(
        what + " '" + value + "' must be non-empty and contain no '/' (it is part of file names)");
}

}  // namespace

std::string shard_path(const std::string& out_dir, const std::string& prefix,
                       const std::string& split, int64_t index) {
  char num[32];
  std::snprintf(num, sizeof num, "%05lld", static_cast<long long>(index));
  return (fs::path(out_dir) / (prefix + "-" + split + "-" + num + ".h5")).string();
}

SplitShardWriter::SplitShardWriter(SplitShardsOptions options) : options_(std::move(options)) {
  check_name("prefix", options_.prefix);
  check_name("split", options_.split);
  if (options_.out_dir.empty()) throw std::invalid_argument("empty output directory");
  if (options_.shard_images < 0)
    throw std::invalid_argument("shard_images must be 0 (one file per split) or positive, got " +
                                std::to_string(options_.shard_images));
  std::error_code ec;
  fs::create_directories(options_.out_dir, ec);
  if (ec)
    throw std::runtime_error(options_.out_dir +
                             ": cannot create output directory: " + ec.message());
  existing_ = existing_shards(options_.out_dir, options_.prefix, options_.split);
  for (const std::string& f : existing_)
    if (!options_.overwrite && !written_by(f, options_.convert_key))
      throw std::runtime_error(f +
                               " already exists from a different conversion; remove the old "
                               "shards or convert with overwrite to replace them");
  // Until this writer finishes, the split is not complete.
  remove_completion_marker(marker_path());
  summary_.split = options_.split;
}

SplitShardWriter::~SplitShardWriter() {
  if (finished_) return;
  current_.reset();  // an unfinished ShardWriter removes its own .tmp
  for (const std::string& f : summary_.files) std::remove(f.c_str());
}

std::string SplitShardWriter::marker_path() const {
  return completion_marker_path(shard_path(options_.out_dir, options_.prefix, options_.split, 0));
}

void SplitShardWriter::open_next() {
  ShardWriterOptions w;
  w.path = shard_path(options_.out_dir, options_.prefix, options_.split,
                      static_cast<int64_t>(summary_.files.size()));
  w.height = options_.height;
  w.width = options_.width;
  w.channels = options_.channels;
  w.chunk_images = options_.chunk_images;
  w.compression = options_.compression;
  w.checksum = options_.checksum;
  w.labels = options_.labels;
  w.source = options_.source;
  w.split = options_.split;
  w.convert_key = options_.convert_key;
  current_ = std::make_unique<ShardWriter>(std::move(w));
}

void SplitShardWriter::append(const uint8_t* images, int64_t count) {
  append_impl<uint8_t>(images, count, nullptr);
}
void SplitShardWriter::append(const uint8_t* images, int64_t count, const uint8_t* labels) {
  append_impl(images, count, labels);
}
void SplitShardWriter::append(const uint8_t* images, int64_t count, const int32_t* labels) {
  append_impl(images, count, labels);
}

template <typename Label>
void SplitShardWriter::append_impl(const uint8_t* images, int64_t count, const Label* labels) {
  const int64_t image_bytes = options_.height * options_.width * options_.channels;
  summary_.pixel_sum = std::accumulate(images, images + count * image_bytes, summary_.pixel_sum);
  int64_t done = 0;
  while (done < count) {
    if (!current_) open_next();
    int64_t n = count - done;
    if (options_.shard_images > 0) n = std::min(n, options_.shard_images - current_->count());
    const uint8_t* img = images + done * image_bytes;
    if (labels)
      current_->append(img, n, labels + done);
    else
      current_->append(img, n);
    done += n;
    summary_.count += n;
    if (options_.shard_images > 0 && current_->count() == options_.shard_images) {
      current_->finish();
      summary_.files.push_back(current_->path());
      current_.reset();
    }
  }
}

SplitSummary SplitShardWriter::finish() {
  if (finished_) throw std::logic_error(options_.split + ": finish() called twice");
  if (current_) {
    current_->finish();
    summary_.files.push_back(current_->path());
    current_.reset();
  }
  // Only now that every new file is in place do the stale ones go.
  for (const std::string& old : existing_)
    if (std::find(summary_.files.begin(), summary_.files.end(), old) == summary_.files.end())
      std::remove(old.c_str());
  existing_.clear();
  if (!options_.convert_key.empty()) {
    std::map<std::string, std::string> keys;
    for (const std::string& f : summary_.files)
      keys[fs::path(f).filename().string()] = options_.convert_key;
    write_completion_marker(marker_path(), keys);
  }
  finished_ = true;
  return summary_;
}

}  // namespace distvae
