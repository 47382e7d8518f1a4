// Building report.html: metrics.jsonl -> series -> SVG polylines; PNGs -> base64 data URIs.
#include "io/output/report.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace distvae {

namespace fs = std::filesystem;

namespace {

using Row = std::map<std::string, double>;  // one metrics line; null values are left out

// The metrics lines are flat objects of numbers written by io/output/metrics_log.cpp.
std::vector<Row> read_metrics(const std::string& path) {
  std::vector<Row> rows;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    Row r;
    size_t i = 0;
    while ((i = line.find('"', i)) != std::string::npos) {
      const size_t end = line.find('"', i + 1);
      if (end == std::string::npos) break;
      const std::string key = line.substr(i + 1, end - i - 1);
      size_t v = line.find(':', end);
      if (v == std::string::npos) break;
      ++v;
      while (v < line.size() && line[v] == ' ') ++v;
      char* stop = nullptr;
      const double x = std::strtod(line.c_str() + v, &stop);
      if (stop != line.c_str() + v) r[key] = x;
      i = line.find_first_of(",}", v);
      if (i == std::string::npos) break;
    }
    if (!r.empty()) rows.push_back(std::move(r));
  }
  return rows;
}

std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<')
      o += "&lt;";
    else if (c == '>')
      o += "&gt;";
    else if (c == '&')
      o += "&amp;";
    else
      o += c;
  }
  return o;
}

std::string base64(const std::string& bytes) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned n = (unsigned char)bytes[i] << 16 | (unsigned char)bytes[i + 1] << 8 |
                       (unsigned char)bytes[i + 2];
    out += t[n >> 18], out += t[(n >> 12) & 63], out += t[(n >> 6) & 63], out += t[n & 63];
  }
  if (i < bytes.size()) {
    const unsigned n = (unsigned char)bytes[i] << 16 |
                       (i + 1 < bytes.size() ? (unsigned char)bytes[i + 1] << 8 : 0);
    out += t[n >> 18], out += t[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? t[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// One chart: y against x for every row holding both, as an inline SVG line with axis labels.
std::string chart(const std::vector<Row>& rows, const std::string& x, const std::string& y,
                  const std::string& title) {
  std::vector<std::pair<double, double>> pts;
  for (const Row& r : rows) {
    auto a = r.find(x), b = r.find(y);
    if (a != r.end() && b != r.end() && std::isfinite(b->second))
      pts.push_back({a->second, b->second});
  }
  if (pts.empty()) return "";
  double x0 = pts.front().first, x1 = x0, y0 = pts.front().second, y1 = y0;
  for (auto [a, b] : pts)
    x0 = std::min(x0, a), x1 = std::max(x1, a), y0 = std::min(y0, b), y1 = std::max(y1, b);
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) {  // a constant series: centre it
    const double pad = std::max(std::abs(y0) * 0.05, 1e-12);
    y0 -= pad, y1 += pad;
  }
  constexpr double W = 420, H = 220, L = 60, R = 10, T = 24, B = 30;
  std::ostringstream s;
  s << "<figure><svg width='" << W << "' height='" << H << "' role='img' aria-label='"
    << escape(title) << "'>"
    << "<rect x='" << L << "' y='" << T << "' width='" << W - L - R << "' height='" << H - T - B
    << "' fill='#fafafa' stroke='#ccc'/>"
    << "<text x='" << L << "' y='16' font-size='13' font-family='sans-serif'>" << escape(title)
    << "</text>";
  char buf[64];
  for (int k = 0; k <= 2; ++k) {  // y ticks: min, middle, max
    const double v = y0 + (y1 - y0) * k / 2.0;
    const double py = T + (H - T - B) * (1 - k / 2.0);
    std::snprintf(buf, sizeof buf, "%.4g", v);
    s << "<text x='" << L - 4 << "' y='" << py + 4 << "' font-size='10' text-anchor='end' "
      << "font-family='sans-serif'>" << buf << "</text>";
  }
  std::snprintf(buf, sizeof buf, "%.4g", x1);
  s << "<text x='" << W - R << "' y='" << H - 10 << "' font-size='10' text-anchor='end' "
    << "font-family='sans-serif'>" << escape(x) << " " << buf << "</text>";
  s << "<polyline fill='none' stroke='#1f6feb' stroke-width='1.5' points='";
  for (auto [a, b] : pts) {
    const double px = L + (W - L - R) * (a - x0) / (x1 - x0);
    const double py = T + (H - T - B) * (1 - (b - y0) / (y1 - y0));
    std::snprintf(buf, sizeof buf, "%.1f,%.1f ", px, py);
    s << buf;
  }
  s << "'/></svg></figure>\n";
  return s.str();
}

std::string machine_summary() {
  utsname u{};
  uname(&u);
  std::ostringstream s;
  s << u.sysname << " " << u.release << " " << u.machine << ", " << sysconf(_SC_NPROCESSORS_ONLN)
    << " cores, host " << u.nodename;
  return s.str();
}

}  // namespace

std::string write_report(const std::string& run_dir) {
  const fs::path dir(run_dir);
  if (!fs::is_directory(dir)) throw std::runtime_error(run_dir + ": not a run directory");
  const std::vector<Row> rows = read_metrics((dir / "metrics.jsonl").string());
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>distvae run "
    << escape(dir.filename().string()) << "</title><style>body{font-family:sans-serif;margin:24px;"
    << "max-width:1400px}figure{display:inline-block;margin:6px}img{image-rendering:pixelated;"
    << "border:1px solid "
       "#ccc}pre{background:#f4f4f4;padding:8px;white-space:pre-wrap}</style></head>"
    << "<body>\n<h1>distvae run " << escape(run_dir) << "</h1>\n<h2>Training</h2>\n";
  const char* curves[][2] = {{"elbo", "ELBO (nats per image)"},
                             {"log_px_given_z", "log p(x|z)"},
                             {"kl", "KL"},
                             {"beta", "beta (KL warm-up)"},
                             {"lr", "learning rate"},
                             {"images_per_s", "images/s"}};
  for (auto& c : curves) h << chart(rows, "step", c[0], c[1]);
  h << "<h2>Validation</h2>\n" << chart(rows, "epoch", "val_elbo", "validation ELBO per epoch");
  h << "<h2>Images</h2>\n";
  const char* captions[][2] = {{"samples.png", "samples from the prior"},
                               {"recon.png", "inputs (odd rows) and their reconstructions"},
                               {"interp.png", "latent interpolation between two images"}};
  for (auto& [name, caption] : captions) {
    const fs::path p = dir / name;
    if (!fs::exists(p)) continue;
    h << "<figure><img alt='" << name << "' width='360' src='data:image/png;base64,"
      << base64(slurp(p.string())) << "'><figcaption>" << caption << "</figcaption></figure>\n";
  }
  if (fs::exists(dir / "eval.json"))
    h << "<h2>Evaluation</h2>\n<pre>" << escape(slurp((dir / "eval.json").string())) << "</pre>\n";
  if (fs::exists(dir / "config.yaml"))
    h << "<h2>Config</h2>\n<pre>" << escape(slurp((dir / "config.yaml").string())) << "</pre>\n";
  h << "<h2>Machine</h2>\n<p>" << escape(machine_summary()) << "</p>\n</body></html>\n";
  const std::string out = (dir / "report.html").string(), tmp = out + ".tmp";
  {
    std::ofstream f(tmp);
    f << h.str();
    if (!f) throw std::runtime_error(tmp + ": cannot write the report");
  }
  fs::rename(tmp, out);
  return out;
}

}  // namespace distvae
