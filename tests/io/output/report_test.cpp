// report.html is one self-contained page: a chart of every numeric key a run's metrics.jsonl holds
// (whatever the family logs), the grids embedded, no external references, the config and the
// evaluation as a table.
#include "io/output/report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "io/image/png.h"
#include "io/output/json_io.h"
#include "io/output/metrics_log.h"

namespace distvae {
namespace {

namespace fs = std::filesystem;

using Fields = std::vector<std::pair<std::string, double>>;

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t i = s.find(what); i != std::string::npos; i = s.find(what, i + 1)) ++n;
  return n;
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::path(DISTVAE_BINARY_DIR) / "test-tmp" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Writes the records through the trainer's writer and returns the report's HTML.
std::string report_of(const fs::path& dir, const std::vector<Fields>& records) {
  {
    MetricsLog log((dir / "metrics.jsonl").string());
    for (const Fields& r : records) log.write(r);
  }
  return read(write_report(dir.string()));
}

// The <figure> drawn for key against x, or "" when there is none.
std::string figure(const std::string& html, const std::string& key, const std::string& x) {
  const size_t at = html.find("<figure data-key='" + key + "' data-x='" + x + "'>");
  if (at == std::string::npos) return "";
  return html.substr(at, html.find("</figure>", at) + 9 - at);
}

// The points of a figure's polyline.
size_t points(const std::string& fig) {
  const size_t at = fig.find("points='");
  if (at == std::string::npos) return 0;
  const std::string pts = fig.substr(at + 8, fig.find('\'', at + 8) - at - 8);
  return size_t(std::count(pts.begin(), pts.end(), ','));
}

std::string g4(double v) {  // as the charts label their y range
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// A per-step series and where its y range must be labelled: its min and max.
struct Curve {
  std::vector<double> v;
  double lo() const { return *std::min_element(v.begin(), v.end()); }
  double hi() const { return *std::max_element(v.begin(), v.end()); }
};

// Checks key's chart against step: one point per value, labelled with the range of the values.
void expect_chart(const std::string& html, const std::string& key, const Curve& c,
                  const std::string& x = "step") {
  SCOPED_TRACE(key);
  const std::string fig = figure(html, key, x);
  ASSERT_FALSE(fig.empty()) << "no chart of " << key << " against " << x;
  EXPECT_EQ(points(fig), c.v.size());
  EXPECT_NE(fig.find(">" + g4(c.lo()) + "<"), std::string::npos) << "min label; " << fig;
  EXPECT_NE(fig.find(">" + g4(c.hi()) + "<"), std::string::npos) << "max label; " << fig;
}

// The position of key's chart in the page (npos when absent).
size_t at(const std::string& html, const std::string& key) {
  return html.find("<figure data-key='" + key + "'");
}

TEST(Report, SelfContainedWithCurvesImagesAndConfig) {
  const fs::path dir = fresh_dir("report-test");
  {  // a file as an older writer left it: a null without a note
    std::ofstream m(dir / "metrics.jsonl");
    for (int s = 1; s <= 5; ++s)
      m << "{\"step\": " << s * 10 << ", \"epoch\": " << s * 0.5 << ", \"elbo\": " << -300 + s
        << ", \"log_px_given_z\": " << -280 + s << ", \"kl\": 20, \"beta\": 1, \"lr\": 0.001, "
        << "\"images_per_s\": 1000, \"kl_dim_min\": null}\n";
    m << "{\"epoch\": 1, \"val_elbo\": -290}\n{\"epoch\": 2, \"val_elbo\": -285}\n";
    std::ofstream(dir / "config.yaml") << "train:\n  batch: 7 # <check escaping>\n";
    std::ofstream(dir / "eval.json") << "{\"iw_log_likelihood\": -231.5}\n";
  }
  std::vector<uint8_t> px(8 * 8, 200);
  write_png((dir / "samples.png").string(), px.data(), 8, 8, 1);
  write_png((dir / "recon.png").string(), px.data(), 8, 8, 1);

  const std::string html = read(write_report(dir.string()));
  for (const char* k : {"elbo", "log_px_given_z", "kl", "beta", "lr", "images_per_s"})
    EXPECT_EQ(points(figure(html, k, "step")), 5u) << k;
  EXPECT_EQ(points(figure(html, "val_elbo", "epoch")), 2u);
  // kl_dim_min holds only nulls: an empty frame that says so.
  const std::string empty = figure(html, "kl_dim_min", "step");
  EXPECT_NE(empty.find("no finite values"), std::string::npos) << empty;
  EXPECT_NE(empty.find("not drawn: 5 null"), std::string::npos) << empty;
  EXPECT_EQ(count(html, "<svg"), 8u) << "7 keys of the step records + validation ELBO";
  EXPECT_EQ(count(html, "<polyline"), 7u);
  EXPECT_EQ(count(html, "data-key='step'") + count(html, "data-key='epoch'"), 0u)
      << "step and epoch are axes, not charts";
  EXPECT_EQ(count(html, "<img"), 2u);
  EXPECT_EQ(count(html, "src='data:image/png;base64,iVBORw0KGgo"), 2u) << "PNGs embedded";
  EXPECT_EQ(count(html, "http"), 0u) << "nothing fetched from a network";
  EXPECT_NE(html.find("batch: 7 # &lt;check escaping&gt;"), std::string::npos);
  EXPECT_NE(html.find("<td class='v'>-231.5</td>"), std::string::npos);
  // Readable order: the objective, then validation, then throughput.
  EXPECT_LT(at(html, "elbo"), at(html, "kl"));
  EXPECT_LT(at(html, "kl"), at(html, "val_elbo"));
  EXPECT_LT(at(html, "val_elbo"), at(html, "images_per_s"));
  fs::remove_all(dir);
}

TEST(Report, GanRunChartsWhatTheGanLogs) {
  const fs::path dir = fresh_dir("report-gan");
  Curve gen, disc, acc, prox, ips;
  std::vector<Fields> records;
  for (int s = 1; s <= 12; ++s) {  // the keys and order of launch/train/trainer.cpp for a GAN
    gen.v.push_back(0.7 + 0.05 * std::sin(s)), disc.v.push_back(1.4 - 0.01 * s);
    acc.v.push_back(0.5 + 0.02 * s), prox.v.push_back(0.001 * s * s), ips.v.push_back(900 + s);
    records.push_back({{"step", 50.0 * s},
                       {"epoch", s / 4.0},
                       {"gen_loss", gen.v.back()},
                       {"proximal", prox.v.back()},
                       {"disc_loss", disc.v.back()},
                       {"disc_accuracy", acc.v.back()},
                       {"lr", 2e-4},
                       {"skipped_steps", 0},
                       {"images_per_s", ips.v.back()},
                       {"comm_exposed_ms", 0.1},
                       {"data_wait_ms", 0.2},
                       {"data_decode_ms", 0.3}});
  }
  const std::string html = report_of(dir, records);
  expect_chart(html, "gen_loss", gen);
  expect_chart(html, "disc_loss", disc);
  expect_chart(html, "disc_accuracy", acc);
  expect_chart(html, "proximal", prox);
  expect_chart(html, "images_per_s", ips);
  for (const char* k : {"lr", "skipped_steps", "comm_exposed_ms", "data_wait_ms", "data_decode_ms"})
    EXPECT_EQ(points(figure(html, k, "step")), 12u) << k;
  EXPECT_EQ(count(html, "<figure data-key="), 10u) << "every key but step and epoch";
  EXPECT_EQ(at(html, "elbo"), std::string::npos) << "no VAE curves for a GAN";
  EXPECT_EQ(html.find("<h2>Validation</h2>"), std::string::npos) << "a GAN logs no val_elbo";
  // The generator, then its discriminator, then the proximal term; throughput last.
  EXPECT_LT(at(html, "gen_loss"), at(html, "disc_loss"));
  EXPECT_LT(at(html, "disc_loss"), at(html, "disc_accuracy"));
  EXPECT_LT(at(html, "disc_accuracy"), at(html, "proximal"));
  EXPECT_LT(at(html, "proximal"), at(html, "lr"));
  EXPECT_LT(at(html, "lr"), html.find("<h2>Throughput and timing</h2>"));
  EXPECT_LT(html.find("<h2>Throughput and timing</h2>"), at(html, "images_per_s"));
  EXPECT_NE(figure(html, "disc_accuracy", "step").find("discriminator accuracy"), std::string::npos)
      << "a known key gets a readable title";
  fs::remove_all(dir);
}

TEST(Report, AdversarialPriorsChartTheirPriorTerm) {
  for (const std::string prior_key : {"prior_t", "prior_softplus_t"}) {  // implicit prior; aae
    SCOPED_TRACE(prior_key);
    const fs::path dir = fresh_dir("report-" + prior_key);
    Curve elbo, prior, disc, val;
    std::vector<Fields> records;
    for (int e = 1; e <= 3; ++e) {
      for (int s = 1; s <= 4; ++s) {
        const int step = (e - 1) * 4 + s;
        elbo.v.push_back(-300 + 3 * step), prior.v.push_back(0.1 * step - 0.5);
        disc.v.push_back(1.3 - 0.02 * step);
        records.push_back({{"step", step},
                           {"epoch", e - 1 + s / 4.0},
                           {"elbo", elbo.v.back()},
                           {"log_px_given_z", -280 + step},
                           {"kl", 20},
                           {"beta", 1},
                           {prior_key, prior.v.back()},
                           {"disc_loss", disc.v.back()},
                           {"disc_accuracy", 0.6},
                           {"a_new_metric", step * 2.5},
                           {"images_per_s", 1000}});
      }
      val.v.push_back(-290 + e);
      records.push_back({{"epoch", e}, {"val_elbo", val.v.back()}, {"epoch_seconds", 3.5 + e}});
    }
    const std::string html = report_of(dir, records);
    expect_chart(html, "elbo", elbo);
    expect_chart(html, prior_key, prior);
    expect_chart(html, "disc_loss", disc);
    expect_chart(html, "val_elbo", val, "epoch");
    EXPECT_EQ(points(figure(html, "epoch_seconds", "epoch")), 3u);
    const std::string unknown = figure(html, "a_new_metric", "step");
    EXPECT_EQ(points(unknown), 12u) << "a key the report does not know is charted too";
    EXPECT_NE(unknown.find("aria-label='a_new_metric'"), std::string::npos) << "titled by its key";
    EXPECT_LT(at(html, "kl"), at(html, prior_key));
    EXPECT_LT(at(html, prior_key), at(html, "disc_loss"));
    EXPECT_LT(at(html, "disc_accuracy"), at(html, "a_new_metric"));
    EXPECT_LT(at(html, "val_elbo"), at(html, "images_per_s"));
    EXPECT_LT(at(html, "images_per_s"), at(html, "epoch_seconds"));
    fs::remove_all(dir);
  }
}

TEST(Report, NonFiniteValuesAreCountedNotDrawn) {
  const fs::path dir = fresh_dir("report-nonfinite");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<Fields> records;
  for (int s = 1; s <= 6; ++s)
    records.push_back({{"step", s}, {"elbo", s == 2 || s == 5 ? nan : -100.0 - s}, {"kl", 3}});
  records.push_back({{"step", 7}, {"elbo", -inf}, {"kl", 3}});
  const std::string html = report_of(dir, records);
  const std::string fig = figure(html, "elbo", "step");
  EXPECT_EQ(points(fig), 4u);
  EXPECT_NE(fig.find("not drawn: 1 -inf, 2 nan"), std::string::npos) << fig;
  EXPECT_EQ(figure(html, "kl", "step").find("not drawn"), std::string::npos);
  EXPECT_EQ(at(html, "nonfinite"), std::string::npos) << "the note is not a series";
  fs::remove_all(dir);
}

TEST(Report, TornAndInvalidLinesAreNotedNotFatal) {
  const fs::path dir = fresh_dir("report-torn");
  std::ofstream(dir / "metrics.jsonl") << "{\"step\": 1, \"elbo\": -5}\n{\"step\": 2, \"elbo\": "
                                          "nan}\n{\"step\": 3, \"elbo\": -4}\n{\"step\": 4, \"el";
  std::ofstream(dir / "eval.json") << "{\"elbo\": -inf}\n";  // what eval used to write
  const std::string html = read(write_report(dir.string()));
  EXPECT_EQ(points(figure(html, "elbo", "step")), 2u);
  EXPECT_NE(html.find("metrics.jsonl:2: not valid JSON"), std::string::npos);
  EXPECT_NE(html.find("metrics.jsonl:4: not valid JSON"), std::string::npos);
  EXPECT_NE(html.find("eval.json: not valid JSON"), std::string::npos);
  EXPECT_NE(html.find("{&quot;elbo&quot;: -inf}"), std::string::npos) << "shown as written";
  fs::remove_all(dir);
}

TEST(Report, EvaluationIsATableWithNestedRows) {
  const fs::path dir = fresh_dir("report-eval");
  Json eval = Json::object();
  put_value(eval, "family", "implicit_prior_vae");
  put_value(eval, "images", 1000);
  put_number(eval, "elbo", -240.123456789, 10);
  put_number(eval, "iw_log_likelihood", -235.5, 10);
  Json quality = Json::array();
  for (const char* prior : {"standard", "aggregate"}) {
    Json q = {{"prior", prior}};
    put_number(q, "mmd2", 0.0123, 10);
    put_number(q, "class_kl", prior == std::string("standard") ? 0.25 : HUGE_VAL, 10);
    put_numbers(q, "class_histogram", {0.5, 0.25, 0.25}, 10);
    quality.push_back(q);
  }
  put_value(eval, "quality", quality);
  write_json_file((dir / "eval.json").string(), eval);
  const std::string html = read(write_report(dir.string()));

  auto row = [&](const std::string& key, const std::string& value) {
    return html.find("<tr><td class='k'>" + key + "</td><td class='v'>" + value + "</td>") !=
           std::string::npos;
  };
  EXPECT_TRUE(row("family", "implicit_prior_vae"));
  EXPECT_TRUE(row("images", "1000"));
  EXPECT_TRUE(row("elbo", "-240.1234568"));
  EXPECT_TRUE(row("iw_log_likelihood", "-235.5"));
  EXPECT_TRUE(row("quality[0].prior", "standard"));
  EXPECT_TRUE(row("quality[0].mmd2", "0.0123"));
  EXPECT_TRUE(row("quality[0].class_kl", "0.25"));
  EXPECT_TRUE(row("quality[0].class_histogram", "0.5, 0.25, 0.25"));
  EXPECT_TRUE(row("quality[1].prior", "aggregate"));
  EXPECT_TRUE(row("quality[1].class_kl", "inf (null in the file)"));
  EXPECT_EQ(count(html, "<tr><td class='k'>"), 12u) << "4 figures + 2 x 4 quality entries";
  EXPECT_EQ(html.find("nonfinite"), std::string::npos) << "the note is shown in place, not a row";
  EXPECT_EQ(html.find("<pre>{"), std::string::npos) << "not a JSON blob";
  EXPECT_NE(html.find("importance-weighted log-likelihood"), std::string::npos)
      << "known figures are explained";
  fs::remove_all(dir);
}

TEST(Report, MissingRunDirectoryIsAnError) {
  EXPECT_THROW(write_report("/nonexistent/run"), std::runtime_error);
}

}  // namespace
}  // namespace distvae
