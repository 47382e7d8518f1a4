#include "io/hdf5/shard_name.h"

namespace distvae {

namespace {
constexpr size_t kTail = 8;  // "NNNNN.h5"
}

int64_t shard_index(const std::string& name, const std::string& stem) {
  if (name.size() != stem.size() + kTail || name.compare(0, stem.size(), stem) != 0 ||
      name.compare(name.size() - 3, 3, ".h5") != 0)
    return -1;
  int64_t v = 0;
  for (size_t i = stem.size(); i < stem.size() + 5; ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

std::string shard_stem(const std::string& name) {
  // At least as long as "p-s-NNNNN.h5"; the stem ends in the dash before the digits.
  if (name.size() < kTail + 4 || name[name.size() - kTail - 1] != '-') return "";
  const std::string stem = name.substr(0, name.size() - kTail);
  return shard_index(name, stem) >= 0 ? stem : "";
}

}  // namespace distvae
