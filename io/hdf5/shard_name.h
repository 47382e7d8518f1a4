// Shard file names: <prefix>-<split>-NNNNN.h5, five digits counting from 00000. Read here, in one
// place, by the converters (which shards exist, which are stale) and the completion markers.
#pragma once

#include <cstdint>
#include <string>

namespace distvae {

// The index of the file NAME (no folder) when it is STEM followed by five digits and ".h5"
// (STEM is "<prefix>-<split>-"), else -1.
int64_t shard_index(const std::string& name, const std::string& stem);

// NAME's "<prefix>-<split>-" (all before the digits) when NAME is a shard file name, else "".
std::string shard_stem(const std::string& name);

}  // namespace distvae
