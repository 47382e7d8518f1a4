// Appending JSON lines of named numbers, built with nlohmann::json (io/output/json_io.h).
#include "io/output/metrics_log.h"

#include <cstdio>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <utility>

#include "io/file/atomic_file.h"
#include "io/output/json_io.h"

namespace distvae {

MetricsLog::MetricsLog(const std::string& path, std::string run_id)
    : path_(path), run_id_(std::move(run_id)), f_(std::fopen(path.c_str(), "a")) {
  if (!f_) throw std::runtime_error(path + ": cannot open the metrics log for writing");
}

MetricsLog::~MetricsLog() {
  if (f_) std::fclose(f_);
}

void MetricsLog::write(const std::vector<std::pair<std::string, double>>& fields) {
  Json record = Json::object();
  if (!run_id_.empty()) record["run_id"] = run_id_;
  try {
    for (const auto& [key, v] : fields) put_number(record, key, v, kDigits);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(path_ + ": metrics record: " + e.what());
  }
  const std::string line = dump_line(record) + "\n";
  if (std::fputs(line.c_str(), f_) < 0 || std::fflush(f_) != 0)
    throw std::runtime_error(path_ + ": cannot write the metrics log (disk full?)");
}

int64_t move_records_after(const std::string& path, int64_t step, int64_t epochs_done,
                           const std::string& aside) {
  std::ifstream in(path);
  if (!in) return 0;
  std::string kept, moved;
  int64_t count = 0;
  for (std::string line; std::getline(in, line);) {
    bool later = false;
    const Json r = Json::parse(line, nullptr, false);
    if (r.is_object()) {
      const std::optional<double> s = get_number(r, "step"), e = get_number(r, "epoch");
      later = s ? *s > double(step) : (e && *e > double(epochs_done));
    }
    (later ? moved : kept) += line + "\n";
    count += later;
  }
  in.close();
  if (count == 0) return 0;
  std::ofstream out_aside(aside, std::ios::app);
  out_aside << moved;
  out_aside.flush();
  if (!out_aside) throw std::runtime_error(aside + ": cannot write the set-aside metrics records");
  replace_file(path, kept);
  return count;
}

}  // namespace distvae
