// Checkpoints as HDF5 files: named float arrays with a CRC-32 each, integer and string
// attributes. Written to a temporary file, flushed, fsynced and renamed, so a crash never leaves
// a half-written file under a checkpoint's name.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace distvae {

// The layout's version (docs/checkpoint.md), written as the root attribute format_version. 1: no
// such attribute (before the "model" description); 2: with it. A reader takes every version up to
// its own and refuses a newer one (CheckpointTooNew).
inline constexpr int64_t kCheckpointFormat = 2;

struct Checkpoint {
  std::map<std::string, std::vector<float>> arrays;  // e.g. "encoder.values", "encoder.adam_m"
  std::map<std::string, int64_t> ints;               // e.g. "step", "epoch"
  std::map<std::string, std::string> strings;        // e.g. "config", "encoder.layout"
};

// A checkpoint that cannot be read at all (missing, no permission, an I/O error): a resume must
// stop there, not pass over a file that a later resume could use.
struct CheckpointUnreadable : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A checkpoint whose content is damaged (truncated, not HDF5, a checksum that does not match): a
// resume may pass over it to an older one.
struct CheckpointCorrupt : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A checkpoint written by a newer distvae, in a format this build does not know: never passed
// over or partly read, and the message says which versions this build reads.
struct CheckpointTooNew : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Writes path.tmp, then renames it to path. On failure the temporary file is removed, path and
// every other file are left as they were, and the error says why; a full disk reads "no space
// left on device while writing checkpoint PATH (N MB needed, M MB free)".
void write_checkpoint(const std::string& path, const Checkpoint& ck);
// ints["format_version"] is set to kCheckpointFormat.
// Reads and verifies every array's checksum. Throws CheckpointUnreadable, CheckpointTooNew or
// CheckpointCorrupt, naming the file (and the array on a checksum mismatch).
Checkpoint read_checkpoint(const std::string& path);

}  // namespace distvae
