// MMD and nearest-neighbour labels against brute-force double-precision loops on small sets.
#include "launch/eval/sample_quality.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/rng.h"

namespace distvae {
namespace {

std::vector<float> rows(int64_t n, int D, uint64_t stream, double shift) {
  std::vector<float> v(size_t(n) * D);
  uniform_fill(5, stream_id(rng_purpose::test, stream), 0, v.size(), v.data());
  for (float& x : v) x = float(std::clamp(x * 0.8 + shift, 0.0, 1.0));
  return v;
}

double sq(const float* a, const float* b, int D) {
  double s = 0;
  for (int d = 0; d < D; ++d) s += (double(a[d]) - b[d]) * (double(a[d]) - b[d]);
  return s;
}

TEST(SampleQuality, MmdMatchesTheDefinition) {
  auto be = make_backend("dnnl");
  const int D = 20;
  const int64_t n = 600, m = 700;  // more than one 512-row block
  const std::vector<float> x = rows(n, D, 1, 0.0), y = rows(m, D, 2, 0.1);
  const Mmd r = gaussian_mmd(*be, x.data(), n, y.data(), m, D);
  const double s2 = r.bandwidth * r.bandwidth;
  auto k = [&](const float* a, const float* b) { return std::exp(-sq(a, b, D) / (2 * s2)); };
  double xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (i != j) xx += k(&x[size_t(i * D)], &x[size_t(j * D)]);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < m; ++j)
      if (i != j) yy += k(&y[size_t(i * D)], &y[size_t(j * D)]);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) xy += k(&x[size_t(i * D)], &y[size_t(j * D)]);
  const double want = xx / (n * (n - 1.0)) + yy / (m * (m - 1.0)) - 2 * xy / (double(n) * m);
  EXPECT_NEAR(r.mmd2, want, 1e-5);
  EXPECT_GT(r.mmd2, 0.01);
  // The same distribution gives an MMD^2 near zero, far below the shifted one.
  const std::vector<float> x2 = rows(n, D, 3, 0.0);
  EXPECT_LT(std::abs(gaussian_mmd(*be, x.data(), n, x2.data(), n, D).mmd2), 0.1 * r.mmd2);
}

TEST(SampleQuality, NearestLabelsMatchBruteForce) {
  auto be = make_backend("dnnl");
  const int D = 12;
  const int64_t n = 300, m = 900;
  const std::vector<float> q = rows(n, D, 4, 0.0), ref = rows(m, D, 5, 0.0);
  std::vector<int> labels(static_cast<size_t>(m));
  for (int64_t j = 0; j < m; ++j) labels[size_t(j)] = int(j % 7);
  const std::vector<int> got = nearest_labels(*be, q.data(), n, ref.data(), m, labels, D);
  int checked = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = 0;
    for (int64_t j = 1; j < m; ++j)
      if (sq(&q[size_t(i * D)], &ref[size_t(j * D)], D) <
          sq(&q[size_t(i * D)], &ref[size_t(best * D)], D))
        best = j;
    EXPECT_EQ(got[size_t(i)], labels[size_t(best)]) << "query " << i;
    ++checked;
  }
  EXPECT_EQ(checked, n);
  const std::vector<double> h = class_histogram(got, 7);
  double total = 0;
  for (double v : h) total += v;
  EXPECT_NEAR(total, 1.0, 1e-12);
  EXPECT_NEAR(histogram_kl(h, h), 0.0, 1e-12);
  EXPECT_TRUE(std::isinf(histogram_kl({0.5, 0.5}, {1.0, 0.0})));
}

}  // namespace
}  // namespace distvae
