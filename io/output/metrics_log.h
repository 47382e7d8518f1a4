// metrics.jsonl: one JSON object per line, appended and flushed, so a crash loses at most a line.
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace distvae {

class MetricsLog {
 public:
  // Appends to path (creating it). Throws naming the file when it cannot be opened.
  explicit MetricsLog(const std::string& path);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  // Writes {"k1": v1, ...}; values are numbers (non-finite ones as null).
  void write(const std::vector<std::pair<std::string, double>>& fields);

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
};

}  // namespace distvae
