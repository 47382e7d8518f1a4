// Batch norm on the dnnl backend: the reference's formulas, threaded over channels (sums) or over
// the (b, c) rows (elementwise), each contiguous row in float SIMD lanes and rows accumulated in
// double. The reference's scalar loops were a fifth of the Fashion-MNIST DCGAN's step; oneDNN
// 2.6's batch normalization primitive has no fused activation and no way to all-reduce its
// statistics between its two passes.
#include <cstddef>

#include "core/backend_dnnl.h"

namespace distvae {

// A row's float partial sums cover at most H * W values; the double across rows keeps a large
// batch exact enough.
void DnnlBackend::batchnorm_sums(const float* x, float* sums, int B, int C, int S) {
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; ++c) {
    double t1 = 0, t2 = 0;
    for (int b = 0; b < B; ++b) {
      const float* row = x + (size_t(b) * C + c) * S;
      float a1 = 0, a2 = 0;
#pragma omp simd reduction(+ : a1, a2)
      for (int i = 0; i < S; ++i) a1 += row[i], a2 += row[i] * row[i];
      t1 += a1, t2 += a2;
    }
    sums[c] = float(t1), sums[C + c] = float(t2);
  }
  sums[2 * C] = float(double(B) * S);
}

void DnnlBackend::batchnorm_forward(const float* x, const float* mean, const float* invstd,
                                    const float* gamma, const float* beta, float* y, int B, int C,
                                    int S, ActSpec act) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int c = 0; c < C; ++c) {
      const float a = gamma[c] * invstd[c], shift = beta[c] - mean[c] * a;  // y = a x + shift
      const size_t row = (size_t(b) * C + c) * S;
#pragma omp simd
      for (int i = 0; i < S; ++i) y[row + i] = a * x[row + i] + shift;
    }
  act_forward(y, y, size_t(B) * C * S, act);  // oneDNN's eltwise, in place
}

void DnnlBackend::batchnorm_backward_sums(const float* x, const float* dy, const float* mean,
                                          const float* invstd, float* dsums, int B, int C, int S) {
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; ++c) {
    const float m = mean[c], is = invstd[c];
    double t1 = 0, t2 = 0;
    for (int b = 0; b < B; ++b) {
      const size_t row = (size_t(b) * C + c) * S;
      float a1 = 0, a2 = 0;
#pragma omp simd reduction(+ : a1, a2)
      for (int i = 0; i < S; ++i) a1 += dy[row + i], a2 += dy[row + i] * (x[row + i] - m) * is;
      t1 += a1, t2 += a2;
    }
    dsums[c] = float(t1), dsums[C + c] = float(t2);
  }
  dsums[2 * C] = float(double(B) * S);
}

void DnnlBackend::batchnorm_backward_data(const float* x, const float* dy, const float* mean,
                                          const float* invstd, const float* gamma,
                                          const float* dsums, float* dx, int B, int C, int S) {
  const float inv_n = 1.0f / dsums[2 * C];
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int c = 0; c < C; ++c) {
      // dx = k (dy - m1 - xhat m2) with xhat = (x - mean) invstd
      const float is = invstd[c], k = gamma[c] * is, m1 = dsums[c] * inv_n,
                  m2 = dsums[C + c] * inv_n * is, mc = mean[c];
      const size_t row = (size_t(b) * C + c) * S;
#pragma omp simd
      for (int i = 0; i < S; ++i) dx[row + i] = k * (dy[row + i] - m1 - (x[row + i] - mc) * m2);
    }
}

}  // namespace distvae
