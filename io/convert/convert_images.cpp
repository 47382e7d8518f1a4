// Converting a folder tree of PNG / JPEG images to HDF5 shards (see io/convert/convert_images.h).
#include "io/convert/convert_images.h"

#include <algorithm>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "core/hash.h"
#include "io/convert/ordered_pipeline.h"
#include "io/hdf5/h5_tables.h"
#include "io/hdf5/shard_writer.h"

namespace distvae {
namespace {

std::string size_text(int64_t w, int64_t h) {
  return std::to_string(w) + "x" + std::to_string(h);
}

void check_options(const ConvertImagesOptions& o) {
  if (o.prep.channels != 1 && o.prep.channels != 3)
    throw std::invalid_argument("convert_images: channels must be 1 (gray) or 3 (RGB), got " +
                                std::to_string(o.prep.channels));
  if (o.prep.size < 0 || o.prep.size > 16384)
    throw std::invalid_argument("convert_images: size must be 0 (keep) or 1..16384, got " +
                                std::to_string(o.prep.size));
  if (o.prep.crop_center && o.prep.size == 0)
    throw std::invalid_argument("convert_images: a centre crop needs a target size (--size N)");
  if (o.val < 0)
    throw std::invalid_argument("convert_images: val must be 0 or positive, got " +
                                std::to_string(o.val));
  if (o.threads < 1 || o.threads > 1024)
    throw std::invalid_argument("convert_images: threads must be 1..1024, got " +
                                std::to_string(o.threads));
  if (o.world < 1 || o.rank < 0 || o.rank >= o.world)
    throw std::invalid_argument("convert_images: rank " + std::to_string(o.rank) +
                                " outside [0, world " + std::to_string(o.world) + ")");
}

// The fingerprint of one shard: the options that shape its bytes and its input files.
std::string shard_key(const ImagesConversion& p, const ShardTask& t) {
  const ConvertImagesOptions& o = p.options;
  std::ostringstream s;
  s << "distvae convert images v1|" << describe(o.prep) << "|" << p.height << "x" << p.width << "x"
    << p.channels << "|chunk=" << o.chunk_images << "|" << to_string(o.compression)
    << "|checksum=" << o.checksum << "|labels=" << o.labels << "|" << t.split << "|" << t.index
    << "|" << t.count;
  uint64_t h = fnv1a(s.str());
  for (const std::string& c : p.folder.class_names) h = fnv1a(c, h);
  for (int64_t i = t.first; i < t.first + t.count; ++i) {
    const ImageFile& f = p.folder.files[static_cast<size_t>(i)];
    h = fnv1a(f.rel, h);
    h = fnv1a(&f.bytes, sizeof f.bytes, h);
    h = fnv1a(&f.mtime_ns, sizeof f.mtime_ns, h);
  }
  return hex64(h);
}

// Writes one shard: workers decode and resize, this thread appends in file order.
void write_shard(const ImagesConversion& p, const ShardTask& t, ConvertProgress& progress,
                 ShardWork& work) {
  const ConvertImagesOptions& o = p.options;
  const bool native = o.prep.size == 0;
  const LabelType label_type = !o.labels                            ? LabelType::none
                               : p.folder.class_names.size() <= 256 ? LabelType::uint8
                                                                    : LabelType::int32;
  uint64_t pixel_sum = 0;
  std::string skipped_text;
  ShardWriterOptions w;
  w.path = t.path;
  w.height = p.height, w.width = p.width, w.channels = p.channels;
  w.chunk_images = o.chunk_images;
  w.compression = o.compression;
  w.checksum = o.checksum;
  w.labels = label_type;
  w.source = "images dir=" + o.input_dir;
  w.split = t.split;
  w.convert_key = t.key;
  w.before_close = [&](hid_t file, const std::string& where) {
    h5_write_string_attr(file, "preprocessing", describe(o.prep), where);
    h5_write_int_attr(file, "pixel_sum", static_cast<int64_t>(pixel_sum), where);
    h5_write_text(file, "skipped_files", skipped_text, where);
    if (o.labels) {
      std::string names;
      for (const std::string& c : p.folder.class_names) names += c + "\n";
      h5_write_text(file, "label_names", names, where);
    }
  };
  ShardWriter writer(w);

  const int window = std::max(16, 4 * o.threads);
  struct Slot {
    Image img;
    std::string error;
    bool fatal = false;
  };
  std::vector<Slot> slots(static_cast<size_t>(window));
  const int workers = o.threads;
  run_ordered(
      t.count, workers, window,
      [&](int64_t i, int s) {
        Slot& slot = slots[static_cast<size_t>(s)];
        const ImageFile& f = p.folder.files[static_cast<size_t>(t.first + i)];
        slot.error.clear();
        slot.fatal = false;
        try {
          slot.img = load_prepared_image(f.path, o.prep);
        } catch (const std::exception& e) {
          slot.error = e.what();
          return;
        }
        if (native && (slot.img.width != p.width || slot.img.height != p.height)) {
          slot.fatal = true;
          slot.error = f.path + " is " + size_text(slot.img.width, slot.img.height) +
                       " (W x H), but " + p.reference + " (the first image) is " +
                       size_text(p.width, p.height) +
                       "; all images must share one size (or give --size N to resize them)";
        }
      },
      [&](int64_t i, int s) {
        Slot& slot = slots[static_cast<size_t>(s)];
        const ImageFile& f = p.folder.files[static_cast<size_t>(t.first + i)];
        if (slot.fatal) throw std::runtime_error(slot.error);
        if (!slot.error.empty()) {
          std::string reason = slot.error;
          for (char& c : reason)
            if (c == '\n' || c == '\t') c = ' ';
          skipped_text += f.path + "\t" + reason + "\n";
        } else {
          const std::vector<uint8_t>& px = slot.img.pixels;
          for (uint8_t v : px) pixel_sum += v;
          if (label_type == LabelType::uint8) {
            const auto l = static_cast<uint8_t>(f.label);
            writer.append(px.data(), 1, &l);
          } else if (label_type == LabelType::int32) {
            writer.append(px.data(), 1, &f.label);
          } else {
            writer.append(px.data(), 1);
          }
          ++work.images;
        }
        ++progress.done;
        if (o.progress) o.progress(progress);
      });
  if (writer.count() == 0)
    write_empty_marker(t, skipped_text);  // the writer's temporary file goes with it
  else
    writer.finish();
}

// The size of the first readable image (prep.size 0): every image must have it.
void find_native_size(ImagesConversion& p) {
  std::string first_error;
  for (const ImageFile& f : p.folder.files) {
    try {
      const Image img = load_prepared_image(f.path, p.options.prep);
      p.width = img.width;
      p.height = img.height;
      p.reference = f.path;
      return;
    } catch (const std::exception& e) {
      if (first_error.empty()) first_error = e.what();
    }
  }
  throw std::runtime_error(p.options.input_dir + ": none of the " +
                           std::to_string(p.folder.files.size()) +
                           " image files could be read; the first error: " + first_error);
}

std::vector<SkippedFile> parse_skipped(const std::string& text) {
  std::vector<SkippedFile> out;
  std::istringstream s(text);
  std::string line;
  while (std::getline(s, line)) {
    if (line.empty()) continue;
    const size_t tab = line.find('\t');
    out.push_back({line.substr(0, tab), tab == std::string::npos ? "" : line.substr(tab + 1)});
  }
  return out;
}

}  // namespace

ImagesConversion plan_images_conversion(const ConvertImagesOptions& o) {
  check_options(o);
  ImagesConversion p;
  p.options = o;
  p.folder = list_image_folder(o.input_dir, o.labels);
  const auto n = static_cast<int64_t>(p.folder.files.size());
  if (n == 0)
    throw std::runtime_error(o.input_dir +
                             ": no .png files (nor .jpg / .jpeg) found (recursively)");
  if (o.val >= n)
    throw std::runtime_error(o.input_dir + " holds " + std::to_string(n) + " image files; val (" +
                             std::to_string(o.val) + ") must be smaller so the '" + o.split +
                             "' split is not empty");
  p.channels = o.prep.channels;
  if (o.prep.size > 0)
    p.height = p.width = o.prep.size;
  else
    find_native_size(p);

  p.tasks = plan_split_shards(o.out_dir, o.prefix, o.split, 0, n - o.val, o.shard_images);
  if (o.val > 0) {
    auto v = plan_split_shards(o.out_dir, o.prefix, "validation", n - o.val, o.val, o.shard_images);
    p.tasks.insert(p.tasks.end(), v.begin(), v.end());
  }
  for (ShardTask& t : p.tasks) t.key = shard_key(p, t);
  p.stale = prepare_output_dir(p.tasks, o.out_dir, o.prefix, o.overwrite);
  return p;
}

ShardWork convert_image_shards(const ImagesConversion& p) {
  const ConvertImagesOptions& o = p.options;
  return run_my_shards(
      p.tasks, o.rank, o.world,
      [&](const ShardTask& t, ConvertProgress& progress, ShardWork& work) {
        write_shard(p, t, progress, work);
      },
      o.progress, o.on_shard_done);
}

ConvertImagesSummary finish_images_conversion(const ImagesConversion& p) {
  for (const std::string& f : p.stale) std::remove(f.c_str());
  mark_splits_complete(p.tasks);
  ConvertImagesSummary s;
  s.removed = p.stale;
  s.shards = static_cast<int64_t>(p.tasks.size());
  s.written.height = p.height;
  s.written.width = p.width;
  s.written.channels = p.channels;
  s.written.splits = summarize_splits(p.tasks, [&](const ShardReport& r) {
    for (SkippedFile& f : parse_skipped(r.skipped_text)) s.skipped.push_back(std::move(f));
  });
  return s;
}

ConvertImagesSummary convert_images(const ConvertImagesOptions& options) {
  const ImagesConversion plan = plan_images_conversion(options);
  convert_image_shards(plan);
  return finish_images_conversion(plan);
}

}  // namespace distvae
