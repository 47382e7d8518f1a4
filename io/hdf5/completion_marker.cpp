#include "io/hdf5/completion_marker.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "io/file/atomic_file.h"
#include "io/hdf5/shard_name.h"

namespace distvae {

namespace fs = std::filesystem;

std::string completion_marker_path(const std::string& shard_path) {
  const fs::path p(shard_path);
  const std::string stem = shard_stem(p.filename().string());  // "<prefix>-<split>-"
  if (stem.empty()) return "";
  return (p.parent_path() / (stem.substr(0, stem.size() - 1) + ".done")).string();
}

void write_completion_marker(const std::string& marker,
                             const std::map<std::string, std::string>& keys) {
  std::string text;
  for (const auto& [name, key] : keys) text += name + '\t' + key + '\n';
  replace_file(marker, text);
}

std::map<std::string, std::string> read_completion_marker(const std::string& marker) {
  std::map<std::string, std::string> keys;
  std::ifstream in(marker);
  for (std::string line; std::getline(in, line);) {
    const size_t tab = line.find('\t');
    if (tab != std::string::npos) keys[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return keys;
}

void remove_completion_marker(const std::string& marker) {
  std::error_code ec;
  fs::remove(marker, ec);
  if (ec)
    throw std::runtime_error(marker + ": cannot remove the old completion marker: " + ec.message());
}

}  // namespace distvae
