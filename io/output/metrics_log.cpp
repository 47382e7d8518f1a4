// Appending JSON lines of named numbers.
#include "io/output/metrics_log.h"

#include <cmath>
#include <stdexcept>

namespace distvae {

MetricsLog::MetricsLog(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "a")) {
  if (!f_) throw std::runtime_error(path + ": cannot open the metrics log for writing");
}

MetricsLog::~MetricsLog() {
  if (f_) std::fclose(f_);
}

void MetricsLog::write(const std::vector<std::pair<std::string, double>>& fields) {
  std::string line = "{";
  char buf[64];
  for (size_t i = 0; i < fields.size(); ++i) {
    const double v = fields[i].second;
    if (!std::isfinite(v))
      std::snprintf(buf, sizeof buf, "null");
    else if (v == std::floor(v) && std::fabs(v) < 1e15)
      std::snprintf(buf, sizeof buf, "%.0f", v);
    else
      std::snprintf(buf, sizeof buf, "%.9g", v);
    line += (i ? ", \"" : "\"") + fields[i].first + "\": " + buf;
  }
  line += "}\n";
  if (std::fputs(line.c_str(), f_) < 0 || std::fflush(f_) != 0)
    throw std::runtime_error(path_ + ": cannot write the metrics log (disk full?)");
}

}  // namespace distvae
