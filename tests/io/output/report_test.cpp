// report.html is one self-contained page: a chart per curve present, the grids embedded, no
// external references, the config and evaluation included.
#include "io/output/report.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/image/png.h"

namespace distvae {
namespace {

namespace fs = std::filesystem;

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t i = s.find(what); i != std::string::npos; i = s.find(what, i + 1)) ++n;
  return n;
}

TEST(Report, SelfContainedWithCurvesImagesAndConfig) {
  const fs::path dir = fs::path(DISTVAE_BINARY_DIR) / "test-tmp" / "report-test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
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

  const std::string path = write_report(dir.string());
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  const std::string html = s.str();
  EXPECT_EQ(count(html, "<svg"), 7u) << "6 training curves + validation ELBO";
  EXPECT_EQ(count(html, "<polyline"), 7u);
  EXPECT_EQ(count(html, "<img"), 2u);
  EXPECT_EQ(count(html, "src='data:image/png;base64,iVBORw0KGgo"), 2u) << "PNGs embedded";
  EXPECT_EQ(count(html, "http"), 0u) << "nothing fetched from a network";
  EXPECT_NE(html.find("batch: 7 # &lt;check escaping&gt;"), std::string::npos);
  EXPECT_NE(html.find("-231.5"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Report, MissingRunDirectoryIsAnError) {
  EXPECT_THROW(write_report("/nonexistent/run"), std::runtime_error);
}

}  // namespace
}  // namespace distvae
