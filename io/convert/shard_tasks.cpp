// The output shards of a resumable, parallel conversion (see io/convert/shard_tasks.h).
#include "io/convert/shard_tasks.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "io/convert/split_shards.h"
#include "io/file/atomic_file.h"
#include "io/hdf5/completion_marker.h"
#include "io/hdf5/h5_tables.h"
#include "io/hdf5/h5_util.h"
#include "io/hdf5/shard_name.h"

namespace distvae {
namespace {

namespace fs = std::filesystem;

std::string read_marker_key(const std::string& path, std::string* rest) {
  std::ifstream f(path);
  std::string key;
  std::getline(f, key);
  if (rest) {
    std::stringstream s;
    s << f.rdbuf();
    *rest = s.str();
  }
  return key;
}

}  // namespace

std::vector<ShardTask> plan_split_shards(const std::string& out_dir, const std::string& prefix,
                                         const std::string& split, int64_t first, int64_t n,
                                         int64_t shard_items) {
  if (shard_items < 0)
    throw std::invalid_argument("shard_images must be 0 (one file per split) or positive, got " +
                                std::to_string(shard_items));
  std::vector<ShardTask> tasks;
  const int64_t per = shard_items > 0 ? shard_items : std::max<int64_t>(n, 1);
  for (int64_t k = 0; k * per < n; ++k) {
    ShardTask t;
    t.split = split;
    t.index = k;
    t.path = shard_path(out_dir, prefix, split, k);
    t.first = first + k * per;
    t.count = std::min(per, n - k * per);
    tasks.push_back(std::move(t));
  }
  return tasks;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string empty_marker_path(const ShardTask& t) {
  return t.path + ".empty";
}

void write_empty_marker(const ShardTask& t, const std::string& skipped_text) {
  replace_file(empty_marker_path(t), t.key + "\n" + skipped_text);
}

ShardState shard_state(const ShardTask& t, std::string* why) {
  std::error_code ec;
  const std::string marker = empty_marker_path(t);
  const bool has_file = fs::exists(t.path, ec), has_marker = fs::exists(marker, ec);
  if (!has_file && !has_marker) return ShardState::missing;
  if (has_marker && !has_file) {
    if (read_marker_key(marker, nullptr) == t.key) return ShardState::complete;
    if (why) *why = "it records another conversion (different inputs or options)";
    return ShardState::foreign;
  }
  H5QuietErrors quiet;
  try {
    H5Handle f(H5_CHECK(H5Fopen(t.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), t.path));
    if (!h5_has_attr(f.get(), "convert_key", t.path)) {
      if (why) *why = "it was not written by a resumable conversion (no convert_key attribute)";
      return ShardState::foreign;
    }
    if (h5_read_string_attr(f.get(), "convert_key", t.path) != t.key) {
      if (why) *why = "it is from another conversion (different inputs or options)";
      return ShardState::foreign;
    }
    return has_marker ? ShardState::foreign : ShardState::complete;
  } catch (const std::exception& e) {
    if (why) *why = std::string("it cannot be read: ") + e.what();
    return ShardState::foreign;
  }
}

std::vector<std::string> prepare_output_dir(const std::vector<ShardTask>& tasks,
                                            const std::string& out_dir, const std::string& prefix,
                                            bool overwrite) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw std::runtime_error(out_dir + ": cannot create output directory: " + ec.message());
  std::vector<std::string> stale;
  for (const ShardTask& t : tasks) {
    std::string why;
    if (shard_state(t, &why) != ShardState::foreign) continue;
    if (!overwrite)
      throw std::runtime_error(t.path + " already exists and " + why +
                               "; remove it, choose another --out or --prefix, or convert with "
                               "--overwrite to replace it");
    std::remove(t.path.c_str());
    std::remove(empty_marker_path(t).c_str());
  }
  // Shards numbered past the plan, in the splits of the plan.
  std::vector<std::string> splits;
  for (const ShardTask& t : tasks)
    if (std::find(splits.begin(), splits.end(), t.split) == splits.end()) splits.push_back(t.split);
  for (const std::string& split : splits) {
    int64_t planned = 0;
    for (const ShardTask& t : tasks) planned += t.split == split;
    const std::string stem = prefix + "-" + split + "-";
    for (const fs::directory_entry& e : fs::directory_iterator(out_dir, ec)) {
      std::string name = e.path().filename().string();
      const bool marker = name.size() > 6 && name.compare(name.size() - 6, 6, ".empty") == 0;
      if (marker) name.resize(name.size() - 6);
      const int64_t idx = shard_index(name, stem);
      if (idx < planned) continue;  // also -1: not a shard of this split
      if (!overwrite)
        throw std::runtime_error(e.path().string() + " already exists beyond the " +
                                 std::to_string(planned) +
                                 " shard(s) this conversion writes for '" + split +
                                 "' (an earlier conversion with more shards?); remove it "
                                 "or convert with --overwrite");
      stale.push_back(e.path().string());
    }
  }
  // Until this conversion completes a split, that split is not complete.
  for (const std::string& split : splits)
    remove_completion_marker(completion_marker_path(shard_path(out_dir, prefix, split, 0)));
  std::sort(stale.begin(), stale.end());
  return stale;
}

void mark_splits_complete(const std::vector<ShardTask>& tasks) {
  std::map<std::string, std::map<std::string, std::string>> keys;  // marker -> name -> key
  for (const ShardTask& t : tasks) {
    std::map<std::string, std::string>& listed = keys[completion_marker_path(t.path)];
    if (fs::exists(t.path)) listed[fs::path(t.path).filename().string()] = t.key;
  }
  for (const auto& [marker, listed] : keys) write_completion_marker(marker, listed);
}

ShardReport read_shard_report(const ShardTask& t) {
  ShardReport r;
  std::error_code ec;
  if (!fs::exists(t.path, ec)) {
    const std::string marker = empty_marker_path(t);
    if (!fs::exists(marker, ec))
      throw std::runtime_error(t.path + ": missing after the conversion (did a rank fail?)");
    read_marker_key(marker, &r.skipped_text);
    return r;
  }
  H5QuietErrors quiet;
  H5Handle f(H5_CHECK(H5Fopen(t.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), t.path));
  r.path = t.path;
  r.count = h5_read_int_attr(f.get(), "count", t.path);
  r.pixel_sum = static_cast<uint64_t>(h5_read_int_attr(f.get(), "pixel_sum", t.path));
  if (h5_exists(f.get(), "skipped_files", t.path))
    r.skipped_text = h5_read_text(f.get(), "skipped_files", t.path);
  return r;
}

std::vector<SplitSummary> summarize_splits(
    const std::vector<ShardTask>& tasks, const std::function<void(const ShardReport&)>& on_report) {
  std::vector<SplitSummary> splits;
  for (const ShardTask& t : tasks) {
    if (splits.empty() || splits.back().split != t.split) {
      splits.emplace_back();
      splits.back().split = t.split;
    }
    const ShardReport r = read_shard_report(t);
    splits.back().count += r.count;
    splits.back().pixel_sum += r.pixel_sum;
    if (!r.path.empty()) splits.back().files.push_back(r.path);
    if (on_report) on_report(r);
  }
  return splits;
}

ShardWork run_my_shards(
    const std::vector<ShardTask>& tasks, int rank, int world,
    const std::function<void(const ShardTask&, ConvertProgress&, ShardWork&)>& write,
    const std::function<void(const ConvertProgress&)>& progress,
    const std::function<void(const ShardTask&)>& on_done) {
  if (world < 1 || rank < 0 || rank >= world)
    throw std::invalid_argument("rank " + std::to_string(rank) + " outside [0, world " +
                                std::to_string(world) + ")");
  ShardWork work;
  ConvertProgress p;
  std::vector<const ShardTask*> todo;
  for (size_t k = static_cast<size_t>(rank); k < tasks.size(); k += static_cast<size_t>(world)) {
    ++p.shards_total;
    if (shard_state(tasks[k]) == ShardState::complete) {
      ++work.resumed;
      ++p.shards_done;
    } else {
      todo.push_back(&tasks[k]);
      p.total += tasks[k].count;
    }
  }
  if (progress) progress(p);
  for (const ShardTask* t : todo) {
    write(*t, p, work);
    ++work.written;
    ++p.shards_done;
    if (progress) progress(p);
    if (on_done) on_done(*t);
  }
  return work;
}

}  // namespace distvae
