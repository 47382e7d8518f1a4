// Writing the procedural sprites dataset to HDF5 shards (see io/convert/convert_procedural.h).
#include "io/convert/convert_procedural.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "core/hash.h"
#include "core/rng.h"
#include "io/convert/ordered_pipeline.h"
#include "io/convert/sprites.h"
#include "io/hdf5/h5_tables.h"
#include "io/hdf5/shard_writer.h"

namespace distvae {
namespace {

constexpr uint64_t kOrderStream = 0x5370726974654f72ull;  // "SpriteOr": the file order's draws

std::string generator_text(const ConvertProceduralOptions& o) {
  return "sprites v1 rgb=" + std::to_string(int(o.rgb)) + " seed=" + std::to_string(o.seed) +
         " order=" + (o.shuffled ? "shuffled" : "grid");
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

void write_shard(const ProceduralConversion& p, const std::vector<int64_t>& order,
                 const ShardTask& t, ConvertProgress& progress, ShardWork& work) {
  const ConvertProceduralOptions& o = p.options;
  const int F = static_cast<int>(sprite_factor_names(o.rgb).size());
  const size_t image_bytes = static_cast<size_t>(p.height * p.width * p.channels);
  std::vector<float> values;
  std::vector<int32_t> classes, grid;
  values.reserve(static_cast<size_t>(t.count * F));
  classes.reserve(static_cast<size_t>(t.count * F));
  grid.reserve(static_cast<size_t>(t.count));
  uint64_t pixel_sum = 0;

  ShardWriterOptions w;
  w.path = t.path;
  w.height = p.height, w.width = p.width, w.channels = p.channels;
  w.chunk_images = o.chunk_images;
  w.compression = o.compression;
  w.checksum = o.checksum;
  w.labels = LabelType::uint8;
  w.source = "procedural " + generator_text(o);
  w.split = t.split;
  w.convert_key = t.key;
  w.before_close = [&](hid_t file, const std::string& where) {
    h5_write_table(file, "factors", values.data(), t.count, F, where);
    h5_write_table(file, "factor_classes", classes.data(), t.count, F, where);
    h5_write_table(file, "grid_index", grid.data(), t.count, 1, where);
    h5_write_string_attr(file, "factor_names", join(sprite_factor_names(o.rgb)), where);
    std::vector<std::string> sizes;
    for (int s : sprite_factor_sizes(o.rgb)) sizes.push_back(std::to_string(s));
    h5_write_string_attr(file, "factor_sizes", join(sizes), where);
    h5_write_string_attr(file, "generator", generator_text(o), where);
    h5_write_int_attr(file, "pixel_sum", static_cast<int64_t>(pixel_sum), where);
  };
  ShardWriter writer(w);

  const int window = std::max(64, 16 * o.threads);
  std::vector<uint8_t> slots(static_cast<size_t>(window) * image_bytes);
  std::vector<SpriteFactors> factors(static_cast<size_t>(window));
  run_ordered(
      t.count, o.threads, window,
      [&](int64_t i, int s) {
        const int64_t g = order[static_cast<size_t>(t.first + i)];
        factors[size_t(s)] = sprite_factors(g, o.rgb, o.seed);
        render_sprite(factors[size_t(s)], o.rgb, slots.data() + size_t(s) * image_bytes);
      },
      [&](int64_t i, int s) {
        const SpriteFactors& f = factors[size_t(s)];
        const uint8_t* px = slots.data() + size_t(s) * image_bytes;
        for (size_t k = 0; k < image_bytes; ++k) pixel_sum += px[k];
        const auto label = static_cast<uint8_t>(f.shape);
        writer.append(px, 1, &label);
        const auto v = sprite_factor_values(f, o.rgb);
        const auto c = sprite_factor_classes(f, o.rgb);
        values.insert(values.end(), v.begin(), v.end());
        classes.insert(classes.end(), c.begin(), c.end());
        grid.push_back(static_cast<int32_t>(order[static_cast<size_t>(t.first + i)]));
        ++work.images;
        ++progress.done;
        if (o.progress && (progress.done & 1023) == 0) o.progress(progress);
      });
  writer.finish();
}

}  // namespace

std::vector<int64_t> sprite_order(bool shuffled, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(kSpriteCount));
  for (int64_t g = 0; g < kSpriteCount; ++g) order[static_cast<size_t>(g)] = g;
  if (!shuffled) return order;
  // Fisher-Yates: for i = n-1 .. 1, j = floor(u_i (i + 1)), u_i element i of the order stream.
  std::vector<double> u(order.size());
  uniform_fill(seed, kOrderStream, 0, u.size(), u.data());
  for (size_t i = order.size() - 1; i > 0; --i) {
    size_t j = static_cast<size_t>(u[i] * double(i + 1));
    if (j > i) j = i;
    std::swap(order[i], order[j]);
  }
  return order;
}

ProceduralConversion plan_procedural_conversion(const ConvertProceduralOptions& in) {
  ConvertProceduralOptions o = in;
  if (o.kind != "sprites")
    throw std::invalid_argument("convert procedural: unknown kind '" + o.kind +
                                "': expected 'sprites'");
  if (o.prefix.empty()) o.prefix = o.rgb ? "sprites_rgb" : "sprites";
  if (o.threads < 1 || o.threads > 1024)
    throw std::invalid_argument("convert procedural: threads must be 1..1024, got " +
                                std::to_string(o.threads));
  if (o.max_images < 0)
    throw std::invalid_argument("convert procedural: max_images must be 0 (all) or positive");
  const int64_t total = o.max_images > 0 ? std::min(o.max_images, kSpriteCount) : kSpriteCount;
  if (o.val < 0 || o.val >= total)
    throw std::invalid_argument("convert procedural: val must be in [0, " + std::to_string(total) +
                                "), got " + std::to_string(o.val));
  ProceduralConversion p;
  p.options = o;
  p.height = p.width = kSpriteSize;
  p.channels = o.rgb ? 3 : 1;
  p.count = total;
  p.tasks = plan_split_shards(o.out_dir, o.prefix, "train", 0, total - o.val, o.shard_images);
  if (o.val > 0) {
    auto v =
        plan_split_shards(o.out_dir, o.prefix, "validation", total - o.val, o.val, o.shard_images);
    p.tasks.insert(p.tasks.end(), v.begin(), v.end());
  }
  for (ShardTask& t : p.tasks) {
    std::ostringstream s;
    s << "distvae convert procedural v1|" << generator_text(o) << "|chunk=" << o.chunk_images << "|"
      << to_string(o.compression) << "|checksum=" << o.checksum << "|" << t.split << "|" << t.index
      << "|" << t.first << "|" << t.count;
    t.key = hex64(fnv1a(s.str()));
  }
  p.stale = prepare_output_dir(p.tasks, o.out_dir, o.prefix, o.overwrite);
  return p;
}

ShardWork convert_procedural_shards(const ProceduralConversion& p) {
  const ConvertProceduralOptions& o = p.options;
  const std::vector<int64_t> order = sprite_order(o.shuffled, o.seed);
  return run_my_shards(
      p.tasks, o.rank, o.world,
      [&](const ShardTask& t, ConvertProgress& progress, ShardWork& work) {
        write_shard(p, order, t, progress, work);
      },
      o.progress, o.on_shard_done);
}

ConvertSummary finish_procedural_conversion(const ProceduralConversion& p) {
  for (const std::string& f : p.stale) std::remove(f.c_str());
  mark_splits_complete(p.tasks);
  ConvertSummary s;
  s.height = p.height, s.width = p.width, s.channels = p.channels;
  s.splits = summarize_splits(p.tasks);
  return s;
}

ConvertSummary convert_procedural(const ConvertProceduralOptions& options) {
  const ProceduralConversion plan = plan_procedural_conversion(options);
  convert_procedural_shards(plan);
  return finish_procedural_conversion(plan);
}

}  // namespace distvae
