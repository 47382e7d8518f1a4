// Plain-loop implementation of every backend primitive: no threads, no vectorization tricks, the
// C library's exp and log; sums accumulate in double. The oracle the fast paths (CpuBackend,
// DnnlBackend, the CUDA backend) are checked against, and in double the one gradient checks use.
#include "core/backends/reference.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <numbers>
#include <type_traits>
#include <vector>

namespace distvae {

namespace {

constexpr double kLog2Pi = 1.8378770664093454835606594728112;

// A weight-gradient call adds into dw and db; to overwrite, it adds into zeros.
template <class T>
void start_grads(T* dw, size_t n_w, T* db, int n_b, GradWrite write) {
  if (write == GradWrite::accumulate) return;
  std::fill(dw, dw + n_w, T(0));
  if (db) std::fill(db, db + n_b, T(0));
}

template <class T>
T apply_act(T x, ActSpec a) {
  switch (a.kind) {
    case Act::none:
      return x;
    case Act::relu:
      return x > T(0) ? x : T(0);
    case Act::leaky_relu:
      return x > T(0) ? x : T(a.alpha) * x;
    case Act::elu:
      return x > T(0) ? x : T(a.alpha) * std::expm1(x);
    // softplus(x) = log(1 + e^x), stable for large |x|
    case Act::softplus:
      return std::max(x, T(0)) + std::log1p(std::exp(-std::abs(x)));
    case Act::tanh:
      return std::tanh(x);
    case Act::sigmoid:
      return T(1) / (T(1) + std::exp(-x));
  }
  return x;
}

// d act / d x expressed through the output y = act(x).
template <class T>
T act_grad_from_output(T y, ActSpec a) {
  switch (a.kind) {
    case Act::none:
      return T(1);
    case Act::relu:
      return y > T(0) ? T(1) : T(0);
    case Act::leaky_relu:
      return y > T(0) ? T(1) : T(a.alpha);  // alpha > 0 keeps sign(y) = sign(x)
    case Act::elu:
      return y > T(0) ? T(1) : y + T(a.alpha);  // alpha e^x = y + alpha
    case Act::softplus:
      return -std::expm1(-y);  // sigmoid(x) = 1 - e^-y
    case Act::tanh:
      return T(1) - y * y;
    case Act::sigmoid:
      return y * (T(1) - y);
  }
  return T(1);
}

}  // namespace

template <class T>
T* ReferenceBackend<T>::alloc(size_t n) {
  if (n == 0) return nullptr;
  T* p = static_cast<T*>(std::aligned_alloc(64, ((n * sizeof(T) + 63) / 64) * 64));
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, n * sizeof(T));
  return p;
}

template <class T>
void ReferenceBackend<T>::release(T* p) {
  std::free(p);
}

template <class T>
void ReferenceBackend<T>::fill(T* x, size_t n, T value) {
  for (size_t i = 0; i < n; ++i) x[i] = value;
}

template <class T>
void ReferenceBackend<T>::copy(const T* src, T* dst, size_t n) {
  if (n) std::memmove(dst, src, n * sizeof(T));
}

// ---------------------------------------------------------------- linear

template <class T>
void ReferenceBackend<T>::linear_forward(const T* x, const T* w, const T* b, T* y, int B, int In,
                                         int Out, ActSpec act) {
  // x: (B, In)  w: (Out, In)  b: (Out)  y: (B, Out)
  for (int i = 0; i < B; ++i)
    for (int o = 0; o < Out; ++o) {
      double s = b ? double(b[o]) : 0.0;
      const T* xr = x + size_t(i) * In;
      const T* wr = w + size_t(o) * In;
      for (int k = 0; k < In; ++k) s += double(xr[k]) * double(wr[k]);
      y[size_t(i) * Out + o] = apply_act(T(s), act);
    }
}

template <class T>
void ReferenceBackend<T>::linear_backward_data(const T* dy, const T* w, T* dx, int B, int In,
                                               int Out) {
  // dy: (B, Out)  w: (Out, In)  dx: (B, In) = dy . w
  for (int i = 0; i < B; ++i)
    for (int k = 0; k < In; ++k) {
      double s = 0;
      for (int o = 0; o < Out; ++o)
        s += double(dy[size_t(i) * Out + o]) * double(w[size_t(o) * In + k]);
      dx[size_t(i) * In + k] = T(s);
    }
}

template <class T>
void ReferenceBackend<T>::linear_backward_weights(const T* x, const T* dy, T* dw, T* db, int B,
                                                  int In, int Out, GradWrite write) {
  // dw: (Out, In) += dy^T . x   db: (Out) += sum_i dy   (after zeroing both to overwrite)
  start_grads(dw, size_t(Out) * In, db, Out, write);
  for (int o = 0; o < Out; ++o) {
    for (int k = 0; k < In; ++k) {
      double s = 0;
      for (int i = 0; i < B; ++i)
        s += double(dy[size_t(i) * Out + o]) * double(x[size_t(i) * In + k]);
      dw[size_t(o) * In + k] += T(s);
    }
    if (db) {
      double s = 0;
      for (int i = 0; i < B; ++i) s += double(dy[size_t(i) * Out + o]);
      db[o] += T(s);
    }
  }
}

// ---------------------------------------------------------------- convolution
// conv2d maps input pixel (ih, iw) and kernel tap (kh, kw) to output (oh, ow) where
// ih = oh * s - p + kh. deconv2d is its transpose: output (oh, ow) = (ih * s - p + kh, ...).
// All six passes below are the same scatter/gather over that index relation.

template <class T>
void ReferenceBackend<T>::conv2d_forward(const T* x, const T* w, const T* b, T* y,
                                         const ConvGeom& g, ActSpec act) {
  // x: (B, Cin, H, W)  w: (Cout, Cin, K, K)  y: (B, Cout, Ho, Wo)
  for (int n = 0; n < g.B; ++n)
    for (int co = 0; co < g.Cout; ++co)
      for (int oh = 0; oh < g.Ho; ++oh)
        for (int ow = 0; ow < g.Wo; ++ow) {
          double s = b ? double(b[co]) : 0.0;
          for (int ci = 0; ci < g.Cin; ++ci)
            for (int kh = 0; kh < g.K; ++kh) {
              int ih = oh * g.stride - g.pad + kh;
              if (ih < 0 || ih >= g.H) continue;
              for (int kw = 0; kw < g.K; ++kw) {
                int iw = ow * g.stride - g.pad + kw;
                if (iw < 0 || iw >= g.W) continue;
                s += double(x[((size_t(n) * g.Cin + ci) * g.H + ih) * g.W + iw]) *
                     double(w[((size_t(co) * g.Cin + ci) * g.K + kh) * g.K + kw]);
              }
            }
          y[((size_t(n) * g.Cout + co) * g.Ho + oh) * g.Wo + ow] = apply_act(T(s), act);
        }
}

template <class T>
void ReferenceBackend<T>::conv2d_backward_data(const T* dy, const T* w, T* dx, const ConvGeom& g) {
  // dx: (B, Cin, H, W) = sum over taps of dy (B, Cout, Ho, Wo) * w (Cout, Cin, K, K)
  for (int n = 0; n < g.B; ++n)
    for (int ci = 0; ci < g.Cin; ++ci)
      for (int ih = 0; ih < g.H; ++ih)
        for (int iw = 0; iw < g.W; ++iw) {
          double s = 0;
          for (int co = 0; co < g.Cout; ++co)
            for (int kh = 0; kh < g.K; ++kh) {
              int th = ih + g.pad - kh;  // = oh * stride
              if (th < 0 || th % g.stride) continue;
              int oh = th / g.stride;
              if (oh >= g.Ho) continue;
              for (int kw = 0; kw < g.K; ++kw) {
                int tw = iw + g.pad - kw;
                if (tw < 0 || tw % g.stride) continue;
                int ow = tw / g.stride;
                if (ow >= g.Wo) continue;
                s += double(dy[((size_t(n) * g.Cout + co) * g.Ho + oh) * g.Wo + ow]) *
                     double(w[((size_t(co) * g.Cin + ci) * g.K + kh) * g.K + kw]);
              }
            }
          dx[((size_t(n) * g.Cin + ci) * g.H + ih) * g.W + iw] = T(s);
        }
}

template <class T>
void ReferenceBackend<T>::conv2d_backward_weights(const T* x, const T* dy, T* dw, T* db,
                                                  const ConvGeom& g, GradWrite write) {
  // dw: (Cout, Cin, K, K) += sum_{n, oh, ow} dy * x   db: (Cout) += sum dy
  start_grads(dw, size_t(g.Cout) * g.Cin * g.K * g.K, db, g.Cout, write);
  for (int co = 0; co < g.Cout; ++co) {
    for (int ci = 0; ci < g.Cin; ++ci)
      for (int kh = 0; kh < g.K; ++kh)
        for (int kw = 0; kw < g.K; ++kw) {
          double s = 0;
          for (int n = 0; n < g.B; ++n)
            for (int oh = 0; oh < g.Ho; ++oh) {
              int ih = oh * g.stride - g.pad + kh;
              if (ih < 0 || ih >= g.H) continue;
              for (int ow = 0; ow < g.Wo; ++ow) {
                int iw = ow * g.stride - g.pad + kw;
                if (iw < 0 || iw >= g.W) continue;
                s += double(dy[((size_t(n) * g.Cout + co) * g.Ho + oh) * g.Wo + ow]) *
                     double(x[((size_t(n) * g.Cin + ci) * g.H + ih) * g.W + iw]);
              }
            }
          dw[((size_t(co) * g.Cin + ci) * g.K + kh) * g.K + kw] += T(s);
        }
    if (db) {
      double s = 0;
      for (int n = 0; n < g.B; ++n)
        for (int i = 0; i < g.Ho * g.Wo; ++i)
          s += double(dy[(size_t(n) * g.Cout + co) * g.Ho * g.Wo + i]);
      db[co] += T(s);
    }
  }
}

template <class T>
void ReferenceBackend<T>::deconv2d_forward(const T* x, const T* w, const T* b, T* y,
                                           const ConvGeom& g, ActSpec act) {
  // x: (B, Cin, H, W)  w: (Cout, Cin, K, K)  y: (B, Cout, Ho, Wo); y[oh = ih*s - p + kh] += x * w
  std::vector<double> acc(size_t(g.Ho) * g.Wo);
  for (int n = 0; n < g.B; ++n)
    for (int co = 0; co < g.Cout; ++co) {
      std::fill(acc.begin(), acc.end(), b ? double(b[co]) : 0.0);
      for (int ci = 0; ci < g.Cin; ++ci)
        for (int ih = 0; ih < g.H; ++ih)
          for (int iw = 0; iw < g.W; ++iw) {
            double xv = double(x[((size_t(n) * g.Cin + ci) * g.H + ih) * g.W + iw]);
            for (int kh = 0; kh < g.K; ++kh) {
              int oh = ih * g.stride - g.pad + kh;
              if (oh < 0 || oh >= g.Ho) continue;
              for (int kw = 0; kw < g.K; ++kw) {
                int ow = iw * g.stride - g.pad + kw;
                if (ow < 0 || ow >= g.Wo) continue;
                acc[size_t(oh) * g.Wo + ow] +=
                    xv * double(w[((size_t(co) * g.Cin + ci) * g.K + kh) * g.K + kw]);
              }
            }
          }
      T* yp = y + (size_t(n) * g.Cout + co) * g.Ho * g.Wo;
      for (size_t i = 0; i < acc.size(); ++i) yp[i] = apply_act(T(acc[i]), act);
    }
}

template <class T>
void ReferenceBackend<T>::deconv2d_backward_data(const T* dy, const T* w, T* dx,
                                                 const ConvGeom& g) {
  // dx (B, Cin, H, W) = sum_{co, kh, kw} dy[oh = ih*s - p + kh] * w
  for (int n = 0; n < g.B; ++n)
    for (int ci = 0; ci < g.Cin; ++ci)
      for (int ih = 0; ih < g.H; ++ih)
        for (int iw = 0; iw < g.W; ++iw) {
          double s = 0;
          for (int co = 0; co < g.Cout; ++co)
            for (int kh = 0; kh < g.K; ++kh) {
              int oh = ih * g.stride - g.pad + kh;
              if (oh < 0 || oh >= g.Ho) continue;
              for (int kw = 0; kw < g.K; ++kw) {
                int ow = iw * g.stride - g.pad + kw;
                if (ow < 0 || ow >= g.Wo) continue;
                s += double(dy[((size_t(n) * g.Cout + co) * g.Ho + oh) * g.Wo + ow]) *
                     double(w[((size_t(co) * g.Cin + ci) * g.K + kh) * g.K + kw]);
              }
            }
          dx[((size_t(n) * g.Cin + ci) * g.H + ih) * g.W + iw] = T(s);
        }
}

template <class T>
void ReferenceBackend<T>::deconv2d_backward_weights(const T* x, const T* dy, T* dw, T* db,
                                                    const ConvGeom& g, GradWrite write) {
  // dw (Cout, Cin, K, K) += sum_{n, ih, iw} dy[oh = ih*s - p + kh] * x
  start_grads(dw, size_t(g.Cout) * g.Cin * g.K * g.K, db, g.Cout, write);
  for (int co = 0; co < g.Cout; ++co) {
    for (int ci = 0; ci < g.Cin; ++ci)
      for (int kh = 0; kh < g.K; ++kh)
        for (int kw = 0; kw < g.K; ++kw) {
          double s = 0;
          for (int n = 0; n < g.B; ++n)
            for (int ih = 0; ih < g.H; ++ih) {
              int oh = ih * g.stride - g.pad + kh;
              if (oh < 0 || oh >= g.Ho) continue;
              for (int iw = 0; iw < g.W; ++iw) {
                int ow = iw * g.stride - g.pad + kw;
                if (ow < 0 || ow >= g.Wo) continue;
                s += double(dy[((size_t(n) * g.Cout + co) * g.Ho + oh) * g.Wo + ow]) *
                     double(x[((size_t(n) * g.Cin + ci) * g.H + ih) * g.W + iw]);
              }
            }
          dw[((size_t(co) * g.Cin + ci) * g.K + kh) * g.K + kw] += T(s);
        }
    if (db) {
      double s = 0;
      for (int n = 0; n < g.B; ++n)
        for (int i = 0; i < g.Ho * g.Wo; ++i)
          s += double(dy[(size_t(n) * g.Cout + co) * g.Ho * g.Wo + i]);
      db[co] += T(s);
    }
  }
}

// ---------------------------------------------------------------- batch normalization
// Channel by channel, each (b, c) row of S values contiguous; sums in double.

template <class T>
void ReferenceBackend<T>::batchnorm_sums(const T* x, T* sums, int B, int C, int S) {
  for (int c = 0; c < C; ++c) {
    double s1 = 0, s2 = 0;
    for (int b = 0; b < B; ++b) {
      const T* row = x + (size_t(b) * C + c) * S;
      for (int i = 0; i < S; ++i) s1 += double(row[i]), s2 += double(row[i]) * double(row[i]);
    }
    sums[c] = T(s1), sums[C + c] = T(s2);
  }
  sums[2 * C] = T(double(B) * S);
}

template <class T>
void ReferenceBackend<T>::batchnorm_moments(const T* sums, T* running_mean, T* running_var, T* mean,
                                            T* invstd, int C, T eps, T momentum, bool training) {
  for (int c = 0; c < C; ++c) {
    double m = double(running_mean[c]), var = double(running_var[c]);
    if (training) {
      const double n = double(sums[2 * C]);
      m = double(sums[c]) / n;
      var = std::max(double(sums[C + c]) / n - m * m, 0.0);
      const double unbiased = n > 1 ? var * n / (n - 1) : var;
      running_mean[c] = T((1 - double(momentum)) * double(running_mean[c]) + double(momentum) * m);
      running_var[c] =
          T((1 - double(momentum)) * double(running_var[c]) + double(momentum) * unbiased);
    }
    mean[c] = T(m);
    invstd[c] = T(1 / std::sqrt(var + double(eps)));
  }
}

template <class T>
void ReferenceBackend<T>::batchnorm_forward(const T* x, const T* mean, const T* invstd,
                                            const T* gamma, const T* beta, T* y, int B, int C,
                                            int S, ActSpec act) {
  for (int c = 0; c < C; ++c) {
    const T a = gamma[c] * invstd[c], shift = beta[c] - mean[c] * a;  // y = act(a x + shift)
    for (int b = 0; b < B; ++b) {
      const size_t row = (size_t(b) * C + c) * S;
      for (int i = 0; i < S; ++i) y[row + i] = apply_act(a * x[row + i] + shift, act);
    }
  }
}

template <class T>
void ReferenceBackend<T>::batchnorm_backward_sums(const T* x, const T* dy, const T* mean,
                                                  const T* invstd, T* dsums, int B, int C, int S) {
  for (int c = 0; c < C; ++c) {
    double s1 = 0, s2 = 0;
    for (int b = 0; b < B; ++b) {
      const size_t row = (size_t(b) * C + c) * S;
      for (int i = 0; i < S; ++i) {
        const double xhat = (double(x[row + i]) - double(mean[c])) * double(invstd[c]);
        s1 += double(dy[row + i]), s2 += double(dy[row + i]) * xhat;
      }
    }
    dsums[c] = T(s1), dsums[C + c] = T(s2);
  }
  dsums[2 * C] = T(double(B) * S);
}

template <class T>
void ReferenceBackend<T>::batchnorm_backward_data(const T* x, const T* dy, const T* mean,
                                                  const T* invstd, const T* gamma, const T* dsums,
                                                  T* dx, int B, int C, int S) {
  const T inv_n = T(1) / dsums[2 * C];
  for (int c = 0; c < C; ++c) {
    const T k = gamma[c] * invstd[c], m1 = dsums[c] * inv_n, m2 = dsums[C + c] * inv_n;
    for (int b = 0; b < B; ++b) {
      const size_t row = (size_t(b) * C + c) * S;
      for (int i = 0; i < S; ++i) {
        const T xhat = (x[row + i] - mean[c]) * invstd[c];
        dx[row + i] = k * (dy[row + i] - m1 - xhat * m2);
      }
    }
  }
}

// ---------------------------------------------------------------- elementwise

template <class T>
void ReferenceBackend<T>::act_forward(const T* x, T* y, size_t n, ActSpec act) {
  for (size_t i = 0; i < n; ++i) y[i] = apply_act(x[i], act);
}

template <class T>
void ReferenceBackend<T>::act_backward(const T* y, const T* dy, T* dx, size_t n, ActSpec act) {
  for (size_t i = 0; i < n; ++i) dx[i] = dy[i] * act_grad_from_output(y[i], act);
}

template <class T>
void ReferenceBackend<T>::axpy(size_t n, T a, const T* x, T* y) {
  for (size_t i = 0; i < n; ++i) y[i] += a * x[i];
}

template <class T>
void ReferenceBackend<T>::scale(size_t n, T a, T* x) {
  for (size_t i = 0; i < n; ++i) x[i] *= a;
}

template <class T>
void ReferenceBackend<T>::mul(size_t n, const T* a, T* x) {
  for (size_t i = 0; i < n; ++i) x[i] *= a[i];
}

template <class T>
double ReferenceBackend<T>::sum_squares(const T* x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += double(x[i]) * double(x[i]);
  return s;
}

template <class T>
void ReferenceBackend<T>::split_rows(const T* h, T* a, T* b, int B, int Da, int Db) {
  const size_t row = size_t(Da) + size_t(Db);
  for (int r = 0; r < B; ++r) {
    if (a) std::memcpy(a + size_t(r) * Da, h + size_t(r) * row, sizeof(T) * size_t(Da));
    std::memcpy(b + size_t(r) * Db, h + size_t(r) * row + Da, sizeof(T) * size_t(Db));
  }
}

template <class T>
void ReferenceBackend<T>::join_rows(const T* a, const T* b, T* h, int B, int Da, int Db) {
  const size_t row = size_t(Da) + size_t(Db);
  for (int r = 0; r < B; ++r) {
    std::memcpy(h + size_t(r) * row, a + size_t(r) * Da, sizeof(T) * size_t(Da));
    std::memcpy(h + size_t(r) * row + Da, b + size_t(r) * Db, sizeof(T) * size_t(Db));
  }
}

template <class T>
bool ReferenceBackend<T>::all_finite(const T* x, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return false;
  return true;
}

// ---------------------------------------------------------------- objective kernels

template <class T>
void ReferenceBackend<T>::reparameterize(const T* mu, const T* logvar, const T* eps, T* z,
                                         size_t n) {
  for (size_t i = 0; i < n; ++i) z[i] = mu[i] + std::exp(T(0.5) * logvar[i]) * eps[i];
}

template <class T>
void ReferenceBackend<T>::reparameterize_backward(const T* dz, const T* logvar, const T* eps,
                                                  T* dmu, T* dlogvar, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    dmu[i] += dz[i];
    dlogvar[i] += dz[i] * eps[i] * T(0.5) * std::exp(T(0.5) * logvar[i]);
  }
}

template <class T>
void ReferenceBackend<T>::bernoulli_log_lik(const T* logits, const T* x, T* ll, T* dlogits, T scale,
                                            int B, int D) {
  for (int b = 0; b < B; ++b) {
    double s = 0;
    for (int d = 0; d < D; ++d) {
      const size_t i = size_t(b) * D + d;
      const T l = logits[i];
      // softplus(l) = max(l, 0) + log(1 + e^-|l|), stable for large |l|
      const T softplus = std::max(l, T(0)) + std::log1p(std::exp(-std::abs(l)));
      s += double(x[i]) * double(l) - double(softplus);
      if (dlogits) dlogits[i] = scale * (x[i] - T(1) / (T(1) + std::exp(-l)));
    }
    ll[b] = T(s);
  }
}

template <class T>
void ReferenceBackend<T>::gaussian_log_lik(const T* mean, const T* logvar, T fixed_logvar,
                                           T logvar_floor, const T* x, T* ll, T* dmean, T* dlogvar,
                                           T scale, int B, int D) {
  for (int b = 0; b < B; ++b) {
    double s = 0;
    for (int d = 0; d < D; ++d) {
      size_t i = size_t(b) * D + d;
      bool floored = logvar && logvar[i] < logvar_floor;
      T v = logvar ? (floored ? logvar_floor : logvar[i]) : fixed_logvar;
      T r = x[i] - mean[i];
      T inv = std::exp(-v);
      s += -0.5 * (kLog2Pi + double(v) + double(r) * double(r) * double(inv));
      if (dmean) dmean[i] = scale * r * inv;
      if (dlogvar) dlogvar[i] = floored ? T(0) : scale * T(0.5) * (r * r * inv - T(1));
    }
    ll[b] = T(s);
  }
}

template <class T>
void ReferenceBackend<T>::kl_std_normal(const T* mu, const T* logvar, T* kl, T* kl_dim, int B,
                                        int D) {
  if (kl_dim) std::fill(kl_dim, kl_dim + D, T(0));
  for (int b = 0; b < B; ++b) {
    double s = 0;
    for (int d = 0; d < D; ++d) {
      size_t i = size_t(b) * D + d;
      T t = T(0.5) * (mu[i] * mu[i] + std::exp(logvar[i]) - logvar[i] - T(1));
      s += double(t);
      if (kl_dim) kl_dim[d] += t;
    }
    kl[b] = T(s);
  }
}

template <class T>
void ReferenceBackend<T>::kl_std_normal_backward(const T* mu, const T* logvar, const T* dim_weight,
                                                 T scale, T* dmu, T* dlogvar, int B, int D) {
  for (int b = 0; b < B; ++b)
    for (int d = 0; d < D; ++d) {
      size_t i = size_t(b) * D + d;
      T s = dim_weight ? scale * dim_weight[d] : scale;
      dmu[i] += s * mu[i];
      dlogvar[i] += s * T(0.5) * std::expm1(logvar[i]);
    }
}

template <class T>
void ReferenceBackend<T>::std_normal_log_density(const T* z, T* lp, T* dz, T scale, int B, int D) {
  for (int b = 0; b < B; ++b) {
    double s = 0;
    for (int d = 0; d < D; ++d) {
      size_t i = size_t(b) * D + d;
      s += -0.5 * (kLog2Pi + double(z[i]) * double(z[i]));
      if (dz) dz[i] += -scale * z[i];
    }
    lp[b] = T(s);
  }
}

template <class T>
void ReferenceBackend<T>::normal_log_density(const T* z, const T* mu, const T* logvar, T* lq, int B,
                                             int D) {
  for (int b = 0; b < B; ++b) {
    double s = 0;
    for (int d = 0; d < D; ++d) {
      size_t i = size_t(b) * D + d;
      double r = double(z[i]) - double(mu[i]);
      s += -0.5 * (kLog2Pi + double(logvar[i]) + r * r * std::exp(-double(logvar[i])));
    }
    lq[b] = T(s);
  }
}

// ---------------------------------------------------------------- optimizers

template <class T>
void ReferenceBackend<T>::adam_update(T* p, const T* g, T* m, T* v, size_t n, const AdamArgs& a) {
  // m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) +
  // eps)
  const double c1 = 1.0 - std::pow(a.beta1, double(a.step));
  const double c2 = 1.0 - std::pow(a.beta2, double(a.step));
  const T b1 = T(a.beta1), b2 = T(a.beta2);
  const T step = T(a.lr / c1), inv_c2 = T(1.0 / c2), eps = T(a.eps),
          decay = T(a.lr * a.weight_decay);
  for (size_t i = 0; i < n; ++i) {
    m[i] = b1 * m[i] + (T(1) - b1) * g[i];
    v[i] = b2 * v[i] + (T(1) - b2) * g[i] * g[i];
    p[i] -= step * m[i] / (std::sqrt(v[i] * inv_c2) + eps) + decay * p[i];
  }
}

template <class T>
void ReferenceBackend<T>::sgd_update(T* p, const T* g, T* velocity, size_t n, const SgdArgs& a) {
  // g' = g + wd p;  v = mu v + g';  p -= lr v   (no momentum: p -= lr g')
  const T lr = T(a.lr), mu = T(a.momentum), wd = T(a.weight_decay);
  const bool use_velocity = velocity && a.momentum != 0.0;
  for (size_t i = 0; i < n; ++i) {
    T gi = g[i] + wd * p[i];
    if (use_velocity) {
      velocity[i] = mu * velocity[i] + gi;
      gi = velocity[i];
    }
    p[i] -= lr * gi;
  }
}

template class ReferenceBackend<float>;
template class ReferenceBackend<double>;

}  // namespace distvae
