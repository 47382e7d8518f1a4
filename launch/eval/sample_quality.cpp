// Pairwise squared distances |a|^2 + |b|^2 - 2 a.b, the products through the backend's matmul a
// block of rows at a time, so memory stays at block x m.
#include "launch/eval/sample_quality.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>

namespace distvae {

namespace {

constexpr int64_t kBlock = 512;

std::vector<double> row_norms(const float* x, int64_t n, int D) {
  std::vector<double> r(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int d = 0; d < D; ++d) s += double(x[i * D + d]) * x[i * D + d];
    r[size_t(i)] = s;
  }
  return r;
}

// Calls f(i, j, squared distance) for every pair of a row i of x and a row j of y.
void for_each_distance(Backend<float>& be, const float* x, int64_t n, const float* y, int64_t m,
                       int D, const std::function<void(int64_t, const double*)>& row) {
  const std::vector<double> nx = row_norms(x, n, D), ny = row_norms(y, m, D);
  float* dy = be.alloc(size_t(m) * D);
  float* dx = be.alloc(size_t(kBlock) * D);
  float* prod = be.alloc(size_t(kBlock) * m);
  be.to_device(y, dy, size_t(m) * D);
  std::vector<float> h(size_t(kBlock) * m);
  std::vector<double> d2(static_cast<size_t>(m));
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int b = int(std::min(kBlock, n - i0));
    be.to_device(x + i0 * D, dx, size_t(b) * D);
    be.linear_forward(dx, dy, nullptr, prod, b, D, int(m), ActSpec{});  // x . y^T
    be.to_host(prod, h.data(), size_t(b) * m);
    for (int r = 0; r < b; ++r) {
      for (int64_t j = 0; j < m; ++j)
        d2[size_t(j)] =
            std::max(0.0, nx[size_t(i0 + r)] + ny[size_t(j)] - 2.0 * h[size_t(r) * m + j]);
      row(i0 + r, d2.data());
    }
  }
  be.release(dy);
  be.release(dx);
  be.release(prod);
}

}  // namespace

Mmd gaussian_mmd(Backend<float>& be, const float* x, int64_t n, const float* y, int64_t m, int D) {
  if (n < 2 || m < 2) throw std::invalid_argument("MMD needs at least two rows on each side");
  // Median heuristic on up to 1000 rows of each side, pooled.
  const int64_t sn = std::min<int64_t>(n, 1000), sm = std::min<int64_t>(m, 1000);
  std::vector<float> pool(x, x + sn * D);
  pool.insert(pool.end(), y, y + sm * D);
  std::vector<double> d;
  for_each_distance(be, pool.data(), sn + sm, pool.data(), sn + sm, D,
                    [&](int64_t i, const double* row) {
                      for (int64_t j = i + 1; j < sn + sm; ++j) d.push_back(row[j]);
                    });
  std::nth_element(d.begin(), d.begin() + long(d.size() / 2), d.end());
  Mmd r;
  const double s2 = d[d.size() / 2] / 2;  // k = exp(-d2 / (2 s^2)) with 2 s^2 = median d2
  r.bandwidth = std::sqrt(s2);
  auto mean_kernel = [&](const float* a, int64_t na, const float* b, int64_t nb, bool same) {
    double s = 0;
    for_each_distance(be, a, na, b, nb, D, [&](int64_t i, const double* row) {
      for (int64_t j = 0; j < nb; ++j)
        if (!same || j != i) s += std::exp(-row[j] / (2 * s2));
    });
    return s / (same ? double(na) * (na - 1) : double(na) * nb);
  };
  r.mmd2 = mean_kernel(x, n, x, n, true) + mean_kernel(y, m, y, m, true) -
           2 * mean_kernel(x, n, y, m, false);
  return r;
}

std::vector<int> nearest_labels(Backend<float>& be, const float* query, int64_t n, const float* ref,
                                int64_t m, const std::vector<int>& ref_labels, int D) {
  if (int64_t(ref_labels.size()) != m)
    throw std::invalid_argument("nearest_labels: one label per reference row");
  std::vector<int> out(static_cast<size_t>(n));
  for_each_distance(be, query, n, ref, m, D, [&](int64_t i, const double* row) {
    out[size_t(i)] = ref_labels[size_t(std::min_element(row, row + m) - row)];
  });
  return out;
}

std::vector<double> class_histogram(const std::vector<int>& labels, int k) {
  std::vector<double> h(static_cast<size_t>(k), 0.0);
  for (int l : labels)
    if (l >= 0 && l < k) h[size_t(l)] += 1.0 / double(labels.size());
  return h;
}

double histogram_kl(const std::vector<double>& p, const std::vector<double>& q) {
  double kl = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0) continue;
    if (q[i] <= 0) return std::numeric_limits<double>::infinity();
    kl += p[i] * std::log(p[i] / q[i]);
  }
  return kl;
}

}  // namespace distvae
