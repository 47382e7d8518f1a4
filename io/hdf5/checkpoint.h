// Checkpoints as HDF5 files: named float arrays with a CRC-32 each, integer and string
// attributes. Written to a temporary file, flushed, fsynced and renamed, so a crash never leaves
// a half-written file under a checkpoint's name.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace distvae {

struct Checkpoint {
  std::map<std::string, std::vector<float>> arrays;  // e.g. "encoder.values", "encoder.adam_m"
  std::map<std::string, int64_t> ints;               // e.g. "step", "epoch"
  std::map<std::string, std::string> strings;        // e.g. "config", "encoder.layout"
};

void write_checkpoint(const std::string& path, const Checkpoint& ck);
// Reads and verifies every array's checksum; throws naming the file and the array on mismatch.
Checkpoint read_checkpoint(const std::string& path);

}  // namespace distvae
