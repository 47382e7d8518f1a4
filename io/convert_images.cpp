// Converting a folder of PNG images to HDF5 shards.
#include "io/convert_images.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "io/png.h"

namespace distvae {
namespace {

namespace fs = std::filesystem;

bool is_png_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png";
}

std::vector<std::string> list_pngs(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw std::runtime_error(dir + ": no such directory (expected a folder of PNG images)");
  std::vector<std::string> files;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  if (ec) throw std::runtime_error(dir + ": cannot list directory: " + ec.message());
  for (const fs::directory_entry& e : it)
    if (e.is_regular_file(ec) && is_png_name(e.path())) files.push_back(e.path().string());
  // Bytewise path order: the same image order (and validation split) on every machine.
  std::sort(files.begin(), files.end());
  return files;
}

std::string size_text(const Image& img) {
  return std::to_string(img.width) + "x" + std::to_string(img.height);
}

}  // namespace

ConvertImagesSummary convert_images(const ConvertImagesOptions& o) {
  if (o.channels != 1 && o.channels != 3)
    throw std::invalid_argument("convert_images: channels must be 1 (gray) or 3 (RGB), got " +
                                std::to_string(o.channels));
  if (o.val < 0)
    throw std::invalid_argument("convert_images: val must be 0 or positive, got " +
                                std::to_string(o.val));
  const std::vector<std::string> files = list_pngs(o.input_dir);
  const auto n_files = static_cast<int64_t>(files.size());
  if (files.empty()) throw std::runtime_error(o.input_dir + ": no .png files found (recursively)");
  if (o.val >= n_files)
    throw std::runtime_error(o.input_dir + " holds " + std::to_string(n_files) +
                             " .png files; val (" + std::to_string(o.val) +
                             ") must be smaller so the '" + o.split + "' split is not empty");

  ConvertImagesSummary summary;
  ConvertSummary& written = summary.written;
  std::vector<std::string> split_names{o.split};
  if (o.val > 0) split_names.push_back("validation");
  std::vector<std::unique_ptr<SplitShardWriter>> writers;
  std::string reference;  // the first readable file: its size is every image's size

  for (int64_t i = 0; i < n_files; ++i) {
    const std::string& path = files[static_cast<size_t>(i)];
    Image img;
    try {
      img = read_png(path);
    } catch (const std::exception& e) {
      summary.skipped.push_back({path, e.what()});
      continue;
    }
    if (reference.empty()) {
      reference = path;
      written.height = img.height;
      written.width = img.width;
      written.channels = o.channels;
      // The writers check for existing output before the first image is written.
      for (const std::string& split : split_names) {
        SplitShardsOptions so;
        so.out_dir = o.out_dir;
        so.prefix = o.prefix;
        so.split = split;
        so.source = "png dir=" + o.input_dir;
        so.height = img.height;
        so.width = img.width;
        so.channels = o.channels;
        so.chunk_images = o.chunk_images;
        so.compression = o.compression;
        so.checksum = o.checksum;
        so.shard_images = o.shard_images;
        so.overwrite = o.overwrite;
        writers.push_back(std::make_unique<SplitShardWriter>(so));
      }
    } else if (img.width != written.width || img.height != written.height) {
      throw std::runtime_error(path + " is " + size_text(img) + " (W x H), but " + reference +
                               " (the first image) is " + std::to_string(written.width) + "x" +
                               std::to_string(written.height) +
                               "; all images must share one size (resizing is not supported yet)");
    }
    const Image converted = convert_channels(img, o.channels);
    const size_t split_index = (o.val > 0 && i >= n_files - o.val) ? 1 : 0;
    writers[split_index]->append(converted.pixels.data(), 1);
  }

  if (writers.empty())
    throw std::runtime_error(
        o.input_dir + ": none of the " + std::to_string(n_files) +
        " .png files could be read; the first error: " + summary.skipped[0].reason);
  for (auto& w : writers) written.splits.push_back(w->finish());
  return summary;
}

}  // namespace distvae
