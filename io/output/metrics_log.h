// metrics.jsonl: one JSON object per line, appended and flushed, so a crash loses at most a line.
// Written through nlohmann::json (io/output/json_io.h): keys escaped, numbers to 9 significant
// digits (integral ones as integers), a non-finite value as null named in the record's
// "nonfinite" note: {"step": 50, "elbo": null, "nonfinite": {"elbo": "nan"}}.
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace distvae {

class MetricsLog {
 public:
  // Appends to path (creating it). Throws naming the file when it cannot be opened. With a
  // run_id, every record starts with "run_id": "<id>", so two runs' lines cannot be mixed up.
  explicit MetricsLog(const std::string& path, std::string run_id = "");
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  // Writes {"k1": v1, ...} in the order given. Throws std::invalid_argument naming the file and
  // the key for a repeated key or one named "nonfinite" (the note's), std::runtime_error when
  // the line cannot be written.
  void write(const std::vector<std::pair<std::string, double>>& fields);

  static constexpr int kDigits = 9;  // significant digits of a non-integral value

 private:
  std::string path_, run_id_;
  std::FILE* f_ = nullptr;
};

// Resuming at a checkpoint taken after `step` optimizer steps and `epochs_done` whole epochs: the
// records the run wrote after it (a step record with a larger step, an epoch record with a larger
// epoch) would repeat when training continues, so they are moved out of path, in their order,
// into aside (appended). Returns how many moved; a path that does not exist moves none. Lines
// that are not JSON records stay where they are.
int64_t move_records_after(const std::string& path, int64_t step, int64_t epochs_done,
                           const std::string& aside);

}  // namespace distvae
