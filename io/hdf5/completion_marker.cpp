#include "io/hdf5/completion_marker.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "io/file/atomic_file.h"

namespace distvae {

namespace fs = std::filesystem;

std::string completion_marker_path(const std::string& shard_path) {
  const fs::path p(shard_path);
  const std::string name = p.filename().string();
  // <prefix>-<split>-NNNNN.h5: a dash, five digits and ".h5" at the end
  if (name.size() < 10 || name.compare(name.size() - 3, 3, ".h5") != 0) return "";
  const size_t dash = name.size() - 9;
  if (name[dash] != '-') return "";
  for (size_t i = dash + 1; i < dash + 6; ++i)
    if (name[i] < '0' || name[i] > '9') return "";
  return (p.parent_path() / (name.substr(0, dash) + ".done")).string();
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
