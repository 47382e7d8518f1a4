// Building report.html: metrics.jsonl -> one series per numeric key -> SVG polylines, grouped and
// titled for the keys the trainer logs; eval.json -> a table; PNGs -> base64 data URIs. Both JSON
// files are read through nlohmann::json (io/output/json_io.h).
#include "io/output/report.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "io/file/atomic_file.h"
#include "io/output/json_io.h"

namespace distvae {

namespace fs = std::filesystem;

namespace {

// ---- metrics.jsonl -> series ----

// Where a series is drawn: the page's sections, in order.
enum class Section { training, validation, optimizer, timing };

const char* section_title(Section s) {
  switch (s) {
    case Section::training:
      return "Training";
    case Section::validation:
      return "Validation";
    case Section::optimizer:
      return "Optimizer";
    case Section::timing:
      return "Throughput and timing";
  }
  return "";
}

// The keys the trainer logs (launch/train/trainer.cpp), in the order they are drawn: a family's
// objective first (VAE; implicit prior; AAE; GAN), then the discriminator, the optimizer, and
// throughput and timing last. A key not listed is drawn after these under its own name.
struct KnownKey {
  const char* key;
  Section section;
  const char* title;
  const char* unit;
};
constexpr KnownKey kKnownKeys[] = {
    {"elbo", Section::training, "ELBO", "nats per image"},
    {"log_px_given_z", Section::training, "log p(x|z)", "nats per image"},
    {"kl", Section::training, "KL(q(z|x) || p(z))", "nats per image"},
    {"kl_dim_min", Section::training, "smallest KL of one latent dimension", "nats"},
    {"beta", Section::training, "beta (KL weight, warm-up)", ""},
    {"prior_t", Section::training, "E_q T(z), implicit prior", "nats"},
    {"prior_softplus_t", Section::training, "E_q softplus T(z), AAE prior cost", "nats"},
    {"gen_loss", Section::training, "generator loss", "nats per image"},
    {"disc_loss", Section::training, "discriminator loss", "nats"},
    {"disc_accuracy", Section::training, "discriminator accuracy", "fraction"},
    {"proximal", Section::training, "proximal term (generator)", ""},
    {"val_elbo", Section::validation, "validation ELBO", "nats per image"},
    {"lr", Section::optimizer, "learning rate", ""},
    {"skipped_steps", Section::optimizer, "skipped steps (non-finite), total", ""},
    {"images_per_s", Section::timing, "throughput", "images/s"},
    {"comm_exposed_ms", Section::timing, "exposed communication", "ms per step"},
    {"data_wait_ms", Section::timing, "waiting for data", "ms per step"},
    {"data_decode_ms", Section::timing, "decoding on the step", "ms per step"},
    {"epoch_seconds", Section::timing, "epoch time", "s"},
};

// The record's position, not a series: drawn against, never as a chart.
bool bookkeeping(const std::string& key) {
  return key == "step" || key == "epoch" || key == kNonfiniteNote;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// One chart: a key's values against step (records with a step) or epoch (records without).
struct Series {
  std::string key, x;  // x: "step" or "epoch"
  std::string title;
  Section section = Section::training;
  size_t rank = 0;                                // drawing order within the page
  std::vector<std::pair<double, double>> points;  // finite values only
  std::map<std::string, int> not_drawn;           // non-finite values by spelling ("nan", ...)
};

struct Metrics {
  std::vector<Series> series;      // in drawing order
  std::vector<std::string> notes;  // lines skipped, records without step or epoch
};

Metrics read_metrics(const std::string& path) {
  Metrics m;
  if (!fs::exists(path)) return m;
  const JsonLines lines = read_json_lines(path);
  m.notes = lines.errors;
  std::map<std::pair<std::string, std::string>, size_t> index;  // (key, x) -> series
  size_t unplaced = 0;
  for (const Json& r : lines.records) {
    const auto step = get_number(r, "step"), epoch = get_number(r, "epoch");
    const bool per_step = step && std::isfinite(*step);
    if (!per_step && !(epoch && std::isfinite(*epoch))) {
      ++unplaced;
      continue;
    }
    const std::string x = per_step ? "step" : "epoch";
    const double xv = per_step ? *step : *epoch;
    for (const auto& [key, value] : r.items()) {
      if (bookkeeping(key) || !(value.is_number() || value.is_null())) continue;
      auto [it, fresh] = index.try_emplace({key, x}, m.series.size());
      if (fresh) {
        Series s;
        s.key = key, s.x = x, s.title = key;
        s.rank = std::size(kKnownKeys) + m.series.size();  // unknown: after the known, as met
        const KnownKey* k = nullptr;
        for (const KnownKey& kk : kKnownKeys)
          if (key == kk.key) k = &kk;
        if (k) {
          s.section = k->section, s.rank = size_t(k - kKnownKeys);
          s.title = std::string(k->title) + (*k->unit ? std::string(" (") + k->unit + ")" : "");
        } else if (ends_with(key, "_ms") || ends_with(key, "_seconds") ||
                   ends_with(key, "_per_s")) {
          s.section = Section::timing;
        } else {
          s.section = per_step ? Section::training : Section::validation;
        }
        if (k && !per_step && k->section == Section::training) s.title += " per epoch";
        m.series.push_back(std::move(s));
      }
      Series& s = m.series[it->second];
      const double v = *get_number(r, key);
      if (std::isfinite(v))
        s.points.push_back({xv, v});
      else if (const auto note = r.find(kNonfiniteNote);
               note != r.end() && note->is_object() && note->contains(key))
        ++s.not_drawn[nonfinite_spelling(v)];
      else
        ++s.not_drawn["null"];  // a file from before the notes
    }
  }
  if (unplaced)
    m.notes.push_back(path + ": " + std::to_string(unplaced) +
                      " record(s) without a step or an epoch, not drawn");
  std::stable_sort(m.series.begin(), m.series.end(), [](const Series& a, const Series& b) {
    return std::tie(a.section, a.rank) < std::tie(b.section, b.rank);
  });
  return m;
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
    else if (c == '\'')
      o += "&#39;";
    else if (c == '"')
      o += "&quot;";
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

// One chart: the series against its x, as an inline SVG line with axis labels; the key in grey at
// the top right. Values that were not finite are counted under the chart; a series with none
// finite is an empty frame saying so.
std::string chart(const Series& series) {
  const auto& pts = series.points;
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (!pts.empty()) {
    x0 = x1 = pts.front().first, y0 = y1 = pts.front().second;
    for (auto [a, b] : pts)
      x0 = std::min(x0, a), x1 = std::max(x1, a), y0 = std::min(y0, b), y1 = std::max(y1, b);
  }
  if (x1 == x0) x1 = x0 + 1;
  const bool constant = y1 == y0;
  if (constant) {  // centre it, labelled with its one value
    const double pad = y0 != 0 ? std::abs(y0) * 0.05 : 1;
    y0 -= pad, y1 += pad;
  }
  // Three charts to a row in a 1300-pixel window.
  constexpr double W = 390, H = 220, L = 60, R = 10, T = 24, B = 30;
  std::ostringstream s;
  s << "<figure data-key='" << escape(series.key) << "' data-x='" << series.x << "'><svg width='"
    << W << "' height='" << H << "' role='img' aria-label='" << escape(series.title) << "'>"
    << "<rect x='" << L << "' y='" << T << "' width='" << W - L - R << "' height='" << H - T - B
    << "' fill='#fafafa' stroke='#ccc'/>"
    << "<text x='" << L << "' y='16' font-size='13' font-family='sans-serif'>"
    << escape(series.title) << "</text>";
  if (series.title != series.key)  // the key as metrics.jsonl names it, under the axis
    s << "<text x='" << L << "' y='" << H - 10 << "' font-size='10' fill='#888' "
      << "font-family='monospace'>" << escape(series.key) << "</text>";
  char buf[64];
  if (pts.empty()) {
    s << "<text x='" << (L + W - R) / 2 << "' y='" << (T + H - B) / 2 << "' font-size='12' "
      << "text-anchor='middle' font-family='sans-serif' fill='#888'>no finite values</text>";
  } else {
    for (int k = 0; k <= 2; ++k) {  // y ticks: min, middle, max
      if (constant && k != 1) continue;
      const double v = y0 + (y1 - y0) * k / 2.0;
      const double py = T + (H - T - B) * (1 - k / 2.0);
      std::snprintf(buf, sizeof buf, "%.4g", v);
      s << "<text x='" << L - 4 << "' y='" << py + 4 << "' font-size='10' text-anchor='end' "
        << "font-family='sans-serif'>" << buf << "</text>";
    }
    std::snprintf(buf, sizeof buf, "%.4g", x1);
    s << "<text x='" << W - R << "' y='" << H - 10 << "' font-size='10' text-anchor='end' "
      << "font-family='sans-serif'>" << series.x << " " << buf << "</text>";
    s << "<polyline fill='none' stroke='#1f6feb' stroke-width='1.5' points='";
    for (auto [a, b] : pts) {
      const double px = L + (W - L - R) * (a - x0) / (x1 - x0);
      const double py = T + (H - T - B) * (1 - (b - y0) / (y1 - y0));
      std::snprintf(buf, sizeof buf, "%.1f,%.1f ", px, py);
      s << buf;
    }
    s << "'/>";
  }
  s << "</svg>";
  if (!series.not_drawn.empty()) {
    s << "<figcaption>not drawn:";
    const char* sep = " ";
    for (const auto& [spelling, n] : series.not_drawn) s << sep << n << " " << spelling, sep = ", ";
    s << "</figcaption>";
  }
  s << "</figure>\n";
  return s.str();
}

// ---- eval.json -> table ----

// What distvae eval's figures mean (launch/eval/evaluate.cpp), by the last part of their path.
const std::map<std::string, std::string>& eval_meanings() {
  static const std::map<std::string, std::string> m = {
      {"family", "model family"},
      {"images", "images evaluated"},
      {"elbo", "ELBO, nats per image (implicit prior: unnormalized)"},
      {"log_px_given_z", "the ELBO's reconstruction term E_q log p(x|z), nats per image"},
      {"kl", "the ELBO's KL term, nats per image"},
      {"iw_log_likelihood", "importance-weighted log-likelihood bound, nats per image"},
      {"iw_samples", "importance samples per image (K)"},
      {"active_units", "latent dimensions with Cov_x E_q[z] > 0.01"},
      {"kl_dim_min", "smallest KL of a latent dimension, nats"},
      {"kl_dim_max", "largest KL of a latent dimension, nats"},
      {"elbo_bits_per_dim", "-ELBO in bits per dimension"},
      {"iw_bits_per_dim", "-IW log-likelihood in bits per dimension"},
      {"log_z", "log Z of the learned prior (AIS, mean over runs)"},
      {"log_z_spread", "max - min of log Z over the AIS runs"},
      {"log_z_std_error", "standard error of log Z (first run)"},
      {"ais_ess", "effective sample size of the AIS chains (first run)"},
      {"ais_chains", "AIS chains"},
      {"iw_log_likelihood_normalized", "IW log-likelihood minus log Z, nats per image"},
      {"ratio_mae_aggregate", "mean |T - exact log q(z)/p(z)| at draws of q(z)"},
      {"ratio_mean_t_aggregate", "mean T at draws of q(z)"},
      {"ratio_mean_exact_aggregate", "mean exact log q(z)/p(z) at draws of q(z)"},
      {"ratio_mae_standard", "mean |T - exact log q(z)/p(z)| at draws of p(z)"},
      {"ratio_mean_t_standard", "mean T at draws of p(z)"},
      {"ratio_mean_exact_standard", "mean exact log q(z)/p(z) at draws of p(z)"},
      {"chains_per_image", "AIS chains per image"},
      {"temperatures", "AIS schedule length (intermediate distributions)"},
      {"log_likelihood", "log p(x) by AIS from the prior, nats per image"},
      {"log_likelihood_normalized", "AIS log p(x) minus log Z of the learned prior"},
      {"std_error", "standard error of the AIS estimate (the chains' noise)"},
      {"ess", "effective sample size of an image's AIS chains"},
      {"acceptance", "mean HMC acceptance rate"},
      {"seconds_per_image", "AIS seconds per image on rank 0"},
      {"lower", "BDMC lower bound (forward AIS), nats per simulated image"},
      {"upper", "BDMC upper bound (reverse AIS from the true z), nats per simulated image"},
      {"gap", "BDMC upper - lower: the AIS error bound on simulated data"},
      {"lower_std_error", "standard error of the lower bound"},
      {"upper_std_error", "standard error of the upper bound"},
      {"bdmc_target", "the BDMC gap asked for (--bdmc-target), nats"},
      {"prior", "where the generated images' z come from"},
      {"mmd2", "MMD^2 of generated against test images"},
      {"bandwidth", "MMD kernel bandwidth"},
      {"class_kl", "KL(generated || test) of the nearest-neighbour classes, nats"},
      {"class_histogram", "fraction of generated images per class"},
  };
  return m;
}

// A scalar as the file holds it; a null as the value its note spells.
std::string eval_value(const Json& v, const Json& note, const std::string& key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) {
    const auto s = note.is_object() ? note.find(key) : note.end();
    return s != note.end() && s->is_string() ? s->get<std::string>() + " (null in the file)"
                                             : "null";
  }
  return v.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Rows of (path, value): an object's fields in order, nested objects and arrays of objects
// flattened as a.b and a[i].b, an array of scalars on one row. The "nonfinite" notes are not rows:
// their spellings appear in place of the nulls they describe.
void eval_rows(const Json& obj, const std::string& prefix,
               std::vector<std::pair<std::string, std::string>>& rows) {
  const Json none;
  const auto it = obj.find(kNonfiniteNote);
  const Json& note = it != obj.end() ? *it : none;
  for (const auto& [key, v] : obj.items()) {
    if (key == kNonfiniteNote) continue;
    const std::string path = prefix + key;
    if (v.is_object()) {
      eval_rows(v, path + ".", rows);
    } else if (v.is_array()) {
      std::string joined;
      bool scalars = true;
      for (size_t i = 0; i < v.size(); ++i) {
        if (v[i].is_structured()) {
          scalars = false;
          if (v[i].is_object())
            eval_rows(v[i], path + "[" + std::to_string(i) + "].", rows);
          else
            rows.push_back({path + "[" + std::to_string(i) + "]", dump_line(v[i])});
        } else {
          joined += (i ? ", " : "") + eval_value(v[i], note, key + "[" + std::to_string(i) + "]");
        }
      }
      if (scalars) rows.push_back({path, joined});
    } else {
      rows.push_back({path, eval_value(v, note, key)});
    }
  }
}

std::string eval_table(const std::string& path) {
  Json j;
  try {
    j = read_json_file(path);
  } catch (const std::exception& e) {  // shown as written, with what is wrong
    return "<p class='note'>" + escape(e.what()) + "</p>\n<pre>" + escape(slurp(path)) + "</pre>\n";
  }
  if (!j.is_object())
    return "<p class='note'>" + escape(path) + ": a JSON " + j.type_name() +
           ", not an object</p>\n<pre>" + escape(dump_line(j)) + "</pre>\n";
  std::vector<std::pair<std::string, std::string>> rows;
  eval_rows(j, "", rows);
  std::ostringstream s;
  s << "<table class='eval'><tr><th>figure</th><th>value</th><th>meaning</th></tr>\n";
  for (const auto& [key, value] : rows) {
    const size_t dot = key.find_last_of(".");
    std::string last = dot == std::string::npos ? key : key.substr(dot + 1);
    const auto m = eval_meanings().find(last);
    s << "<tr><td class='k'>" << escape(key) << "</td><td class='v'>" << escape(value)
      << "</td><td>" << (m != eval_meanings().end() ? escape(m->second) : "") << "</td></tr>\n";
  }
  s << "</table>\n";
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
  const Metrics metrics = read_metrics((dir / "metrics.jsonl").string());
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>distvae run "
    << escape(dir.filename().string()) << "</title><style>body{font-family:sans-serif;margin:24px;"
    << "max-width:1400px}figure{display:inline-block;margin:6px}figcaption{font-size:12px;"
    << "color:#555;margin-left:60px}img{image-rendering:pixelated;border:1px solid #ccc}"
    << "pre{background:#f4f4f4;padding:8px;white-space:pre-wrap}.note{color:#a33}"
    << "table.eval{border-collapse:collapse;font-size:14px}table.eval th,table.eval td{"
    << "border-bottom:1px solid #ddd;padding:4px 12px;text-align:left}table.eval th{"
    << "background:#f4f4f4}table.eval td.k{font-family:monospace}table.eval td.v{"
    << "font-family:monospace;text-align:right;max-width:480px}</style></head>"
    << "<body>\n<h1>distvae run " << escape(run_dir) << "</h1>\n";
  for (const std::string& note : metrics.notes) h << "<p class='note'>" << escape(note) << "</p>\n";
  for (size_t i = 0; i < metrics.series.size(); ++i) {
    const Section sec = metrics.series[i].section;
    if (i == 0 || metrics.series[i - 1].section != sec)
      h << "<h2>" << section_title(sec) << "</h2>\n";
    h << chart(metrics.series[i]);
  }
  h << "<h2>Images</h2>\n";
  const char* captions[][2] = {
      {"samples.png", "z ~ N(0, I) through the decoder (a gan: the generator)"},
      {"recon.png", "inputs (odd rows) and their reconstructions"},
      {"interp.png", "latent interpolation between two images"}};
  for (auto& [name, caption] : captions) {
    const fs::path p = dir / name;
    if (!fs::exists(p)) continue;
    h << "<figure><img alt='" << name << "' width='360' src='data:image/png;base64,"
      << base64(slurp(p.string())) << "'><figcaption>" << caption << "</figcaption></figure>\n";
  }
  if (fs::exists(dir / "eval.json"))
    h << "<h2>Evaluation</h2>\n" << eval_table((dir / "eval.json").string());
  if (fs::exists(dir / "config.yaml"))
    h << "<h2>Config</h2>\n<pre>" << escape(slurp((dir / "config.yaml").string())) << "</pre>\n";
  h << "<h2>Machine</h2>\n<p>" << escape(machine_summary()) << "</p>\n</body></html>\n";
  const std::string out = (dir / "report.html").string();
  replace_file(out, h.str());
  return out;
}

}  // namespace distvae
