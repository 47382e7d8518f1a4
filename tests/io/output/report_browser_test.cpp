// report.html in a real browser: headless Chromium loads it from a file (no network), logs no
// console errors, and its screenshot shows the curves and the images (non-blank regions).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/image/png.h"
#include "io/output/report.h"

namespace distvae {
namespace {

namespace fs = std::filesystem;

TEST(ReportBrowser, ChromiumRendersCurvesAndImages) {
  if (!fs::exists("/usr/bin/chromium"))
    GTEST_SKIP() << "SKIP [command:chromium]: /usr/bin/chromium not installed (launch/setup.sh "
                    "installs it)";
  const fs::path dir = fs::path(DISTVAE_BINARY_DIR) / "test-tmp" / "report-browser";
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::ofstream m(dir / "metrics.jsonl");
    for (int s = 1; s <= 50; ++s)
      m << "{\"step\": " << s << ", \"epoch\": " << s / 10.0 << ", \"elbo\": " << -300 + 2 * s
        << ", \"log_px_given_z\": " << -280 + s << ", \"kl\": " << 30 - s / 5.0
        << ", \"beta\": 1, \"lr\": 0.001, \"images_per_s\": " << 1000 + s << "}\n";
    for (int e = 1; e <= 5; ++e)
      m << "{\"epoch\": " << e << ", \"val_elbo\": " << -290 + e << "}\n";
  }
  // Grids that are bright in the middle, so the screenshot shows them as non-black regions.
  std::vector<uint8_t> px(64 * 64, 0);
  for (int y = 8; y < 56; ++y)
    for (int x = 8; x < 56; ++x) px[size_t(y * 64 + x)] = 255;
  write_png((dir / "samples.png").string(), px.data(), 64, 64, 1);
  write_png((dir / "recon.png").string(), px.data(), 64, 64, 1);
  const std::string html = write_report(dir.string());

  const fs::path shot = dir / "shot.png", log = dir / "chromium.log", profile = dir / "profile";
  const std::string cmd =
      "timeout 120 /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic "
      "--no-first-run --disable-background-networking --disable-component-update --disable-sync "
      "--enable-logging=stderr --v=0 --user-data-dir=" +
      profile.string() + " --window-size=1300,2000 --screenshot=" + shot.string() + " file://" +
      html + " >" + log.string() + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "chromium failed; see " << log;
  std::stringstream ls;
  ls << std::ifstream(log).rdbuf();
  EXPECT_EQ(ls.str().find("CONSOLE"), std::string::npos) << "console messages:\n" << ls.str();

  const Image img = read_png(shot.string());
  ASSERT_GE(img.width, 1000);
  int64_t curve = 0, black = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      const uint8_t* p = &img.pixels[size_t((y * img.width + x) * img.channels)];
      const int r = p[0], g = p[img.channels > 1 ? 1 : 0], b = p[img.channels > 2 ? 2 : 0];
      if (b > 180 && r < 120 && g < 170) ++curve;  // the charts' #1f6feb lines
      if (r == 0 && g == 0 && b == 0) ++black;
    }
  // Each grid is drawn 360 px wide: its black frame around the bright square is ~50k pixels,
  // far more than all the page's text.
  EXPECT_GT(curve, 2000) << "chart lines visible";
  EXPECT_GT(black, 100000) << "both image grids visible";
  std::printf("screenshot %dx%d: %lld chart-line pixels, %lld black pixels\n", img.width,
              img.height, (long long)curve, (long long)black);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace distvae
