// Appending JSON lines of named numbers, built with nlohmann::json (io/output/json_io.h).
#include "io/output/metrics_log.h"

#include <stdexcept>

#include "io/output/json_io.h"

namespace distvae {

MetricsLog::MetricsLog(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "a")) {
  if (!f_) throw std::runtime_error(path + ": cannot open the metrics log for writing");
}

MetricsLog::~MetricsLog() {
  if (f_) std::fclose(f_);
}

void MetricsLog::write(const std::vector<std::pair<std::string, double>>& fields) {
  Json record = Json::object();
  try {
    for (const auto& [key, v] : fields) put_number(record, key, v, kDigits);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(path_ + ": metrics record: " + e.what());
  }
  const std::string line = dump_line(record) + "\n";
  if (std::fputs(line.c_str(), f_) < 0 || std::fflush(f_) != 0)
    throw std::runtime_error(path_ + ": cannot write the metrics log (disk full?)");
}

}  // namespace distvae
