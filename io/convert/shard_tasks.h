// The output shards of a resumable, parallel conversion: which items each shard holds, which
// rank writes it, whether a previous run already completed it, and the report read back from it.
//
// A conversion lays out its items (files, procedural images) in a fixed order and cuts each split
// into shards of `shard_items` consecutive items: shard k of a split holds items
// [k * shard_items, (k + 1) * shard_items). The layout depends on the inputs and options only, not
// on which items turn out unreadable, so every shard can be written on its own: by any rank
// (shard t of the whole list goes to rank t % world) and in any run.
//
// Resume. A shard appears under its final name only when complete (ShardWriter writes a temporary
// file and renames it), and carries the attribute `convert_key`, a fingerprint of everything that
// determines its contents (options, and for files their relative paths, sizes and modification
// times). A rerun skips every shard whose file exists with the same key; a file with another key
// belongs to a different conversion and is an error unless overwriting. A shard whose items were
// all unreadable has no images, so it is recorded by a marker file <shard>.empty instead.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/convert/split_shards.h"

namespace distvae {

struct ShardTask {
  std::string split;
  int64_t index = 0;  // shard number inside the split
  std::string path;   // <out_dir>/<prefix>-<split>-<index:05d>.h5
  int64_t first = 0;  // first item, in the converter's numbering of all items
  int64_t count = 0;  // items in this shard
  std::string key;    // the fingerprint, filled in by the converter
};

// Shards for items [first, first + n) of one split; shard_items 0 means one shard.
std::vector<ShardTask> plan_split_shards(const std::string& out_dir, const std::string& prefix,
                                         const std::string& split, int64_t first, int64_t n,
                                         int64_t shard_items);

// A fingerprint (core/hash.h's fnv1a) as 16 hex digits.
std::string hex64(uint64_t v);

enum class ShardState {
  missing,   // no file yet (or only a leftover temporary file)
  complete,  // written by a conversion with the same key
  foreign,   // a file with another key, or one that is unreadable
};
// `why` (optional) receives the reason a shard is foreign.
ShardState shard_state(const ShardTask& t, std::string* why = nullptr);

// The marker of a shard with no readable item: <path>.empty holding the key and the skipped list.
std::string empty_marker_path(const ShardTask& t);
void write_empty_marker(const ShardTask& t, const std::string& skipped_text);

// Creates the output directory and checks it before any work: each task must be missing or
// complete, and no shard of these splits may exist beyond the planned ones (a glob would mix two
// conversions).
// Without overwrite a violation throws naming the file; with overwrite, foreign shards are
// removed now and the stale ones are returned for removal once the conversion is complete.
std::vector<std::string> prepare_output_dir(const std::vector<ShardTask>& tasks,
                                            const std::string& out_dir, const std::string& prefix,
                                            bool overwrite);

// Writes each split's completion marker (io/hdf5/completion_marker.h) listing its shard files;
// call once every task is complete.
void mark_splits_complete(const std::vector<ShardTask>& tasks);

// What a complete shard holds, read back from the file (or its empty marker).
struct ShardReport {
  std::string path;  // empty for a shard with no images
  int64_t count = 0;
  uint64_t pixel_sum = 0;
  std::string skipped_text;  // lines "path<TAB>reason"
};
ShardReport read_shard_report(const ShardTask& t);

// What the tasks wrote, per split in task order, from each complete shard's report (count, pixel
// sum, file); on_report, when given, also sees every report (for its skipped-file list).
std::vector<SplitSummary> summarize_splits(
    const std::vector<ShardTask>& tasks,
    const std::function<void(const ShardReport&)>& on_report = {});

// Progress of one process through its shards.
struct ConvertProgress {
  int64_t done = 0, total = 0;  // items this process has converted / must convert in this run
  int64_t shards_done = 0, shards_total = 0;  // this process's shards, resumed ones included
};

// What one process did in run_my_shards.
struct ShardWork {
  int64_t resumed = 0;  // shards found complete and skipped
  int64_t written = 0;  // shards written now
  int64_t images = 0;   // images written now (counted by `write`)
};

// The loop every converter shares: for the tasks t with t % world == rank, skips the complete
// ones and calls write(task, progress, work) for the others, in order; `write` advances
// progress.done per item. progress (optional) is called once before the first shard and after
// each; on_done (optional) after each shard written.
ShardWork run_my_shards(
    const std::vector<ShardTask>& tasks, int rank, int world,
    const std::function<void(const ShardTask&, ConvertProgress&, ShardWork&)>& write,
    const std::function<void(const ConvertProgress&)>& progress,
    const std::function<void(const ShardTask&)>& on_done);

}  // namespace distvae
