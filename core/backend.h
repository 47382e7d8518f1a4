// The compute backend interface: the heavy primitives, elementwise and objective kernels, and the
// optimizer update over a flat span. All pointers are in the backend's memory space.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/activation.h"

namespace distvae {

// Geometry of a 2-D convolution or transposed convolution (square kernels, equal stride/padding
// in both directions). conv2d: x (B, Cin, H, W) -> y (B, Cout, Ho, Wo).
// deconv2d: x (B, Cin, H, W) -> y (B, Cout, Ho, Wo) with Ho = (H - 1) * stride - 2 * pad + K +
// out_pad. Weights are (Cout, Cin, K, K) for both.
struct ConvGeom {
  int B = 0, Cin = 0, H = 0, W = 0;
  int Cout = 0, Ho = 0, Wo = 0;
  int K = 1, stride = 1, pad = 0;
};

// How a weight-gradient call writes dw and db: overwrite (dw = ...) for the first backward pass of
// a step, which spares zeroing the buffer and reading it back; accumulate (dw += ...) for the
// passes after it (several samples, a discriminator's two classes).
enum class GradWrite { overwrite, accumulate };

struct AdamArgs {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;  // decoupled (AdamW): p -= lr * wd * p
  int64_t step = 1;           // 1-based, for bias correction
};

struct SgdArgs {
  double lr = 1e-2, momentum = 0.0, weight_decay = 0.0;  // L2: g += wd * p
};

template <class T>
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // ---- memory (host memory on CPU backends) ----
  virtual T* alloc(size_t n) = 0;  // zero-initialised
  virtual void release(T* p) = 0;
  virtual void to_device(const T* host, T* dev, size_t n) = 0;
  virtual void to_host(const T* dev, T* host, size_t n) = 0;
  // Starts copying host to dev and returns at once, so that the next batch crosses the bus while
  // this one computes. The copy lands after all work queued so far (which may still read dev)
  // and before upload_wait() returns; until then host must stay unchanged and dev unused. One
  // upload in flight at a time. CPU backends copy before returning.
  virtual void upload_start(const T* host, T* dev, size_t n) = 0;
  virtual void upload_wait() = 0;
  virtual void fill(T* x, size_t n, T value) = 0;
  virtual void copy(const T* src, T* dst, size_t n) = 0;  // dst = src; no partial overlap

  // ---- heavy primitives ----
  // y (B, Out) = act(x (B, In) . w (Out, In)^T + b (Out)); b may be null.
  virtual void linear_forward(const T* x, const T* w, const T* b, T* y, int B, int In, int Out,
                              ActSpec act) = 0;
  // dx (B, In) = dy (B, Out) . w (Out, In)            [overwrites dx]
  virtual void linear_backward_data(const T* dy, const T* w, T* dx, int B, int In, int Out) = 0;
  // dw (Out, In) (+)= dy^T . x;  db (Out) (+)= sum_b dy   [as `write` says; db may be null]
  virtual void linear_backward_weights(const T* x, const T* dy, T* dw, T* db, int B, int In,
                                       int Out, GradWrite write) = 0;

  // y = act(conv(x, w) + b)
  virtual void conv2d_forward(const T* x, const T* w, const T* b, T* y, const ConvGeom& g,
                              ActSpec act) = 0;
  virtual void conv2d_backward_data(const T* dy, const T* w, T* dx, const ConvGeom& g) = 0;
  virtual void conv2d_backward_weights(const T* x, const T* dy, T* dw, T* db, const ConvGeom& g,
                                       GradWrite write) = 0;
  virtual void deconv2d_forward(const T* x, const T* w, const T* b, T* y, const ConvGeom& g,
                                ActSpec act) = 0;
  virtual void deconv2d_backward_data(const T* dy, const T* w, T* dx, const ConvGeom& g) = 0;
  virtual void deconv2d_backward_weights(const T* x, const T* dy, T* dw, T* db, const ConvGeom& g,
                                         GradWrite write) = 0;

  // ---- elementwise ----
  // y = act(x); x == y allowed.
  virtual void act_forward(const T* x, T* y, size_t n, ActSpec act) = 0;
  // dx = dy * act'(x), with act' computed from the forward output y; dy == dx allowed.
  virtual void act_backward(const T* y, const T* dy, T* dx, size_t n, ActSpec act) = 0;
  virtual void axpy(size_t n, T a, const T* x, T* y) = 0;  // y += a * x
  virtual void scale(size_t n, T a, T* x) = 0;             // x *= a
  virtual void mul(size_t n, const T* a, T* x) = 0;        // x *= a, elementwise
  virtual double sum_squares(const T* x, size_t n) = 0;    // sum x^2, accumulated in double
  // a (B, Da) = h[:, :Da], b (B, Db) = h[:, Da:] for h (B, Da + Db): a Gaussian head's two
  // halves, or a feature map's gradient behind the image's channels. A null a is skipped.
  virtual void split_rows(const T* h, T* a, T* b, int B, int Da, int Db) = 0;
  // h (B, Da + Db) = [a | b], the inverse of split_rows.
  virtual void join_rows(const T* a, const T* b, T* h, int B, int Da, int Db) = 0;
  // Returns true when every element is finite.
  virtual bool all_finite(const T* x, size_t n) = 0;

  // ---- batch normalization over x (B, C, S): channel c's statistics are over its B * S values
  // (S = H * W for images, 1 for flat features). The sums buffers hold 2C + 1 values, the count
  // last, so one all-reduce of a buffer makes its statistics those of the global batch. ----
  // sums = [sum x (C), sum x^2 (C), B * S]                                     [overwritten]
  virtual void batchnorm_sums(const T* x, T* sums, int B, int C, int S) = 0;
  // training: n = sums[2C], mean = sums[:C] / n, var = sums[C:2C] / n - mean^2, and the running
  // averages move by momentum towards mean and the unbiased var * n / (n - 1). Otherwise
  // (evaluation) mean and var are the running averages and sums is not read.
  // invstd = 1 / sqrt(var + eps).
  virtual void batchnorm_moments(const T* sums, T* running_mean, T* running_var, T* mean, T* invstd,
                                 int C, T eps, T momentum, bool training) = 0;
  // y = act(gamma * (x - mean) * invstd + beta), per channel
  virtual void batchnorm_forward(const T* x, const T* mean, const T* invstd, const T* gamma,
                                 const T* beta, T* y, int B, int C, int S, ActSpec act) = 0;
  // dsums = [sum dy (C), sum dy * xhat (C), B * S] with xhat = (x - mean) * invstd [overwritten]
  virtual void batchnorm_backward_sums(const T* x, const T* dy, const T* mean, const T* invstd,
                                       T* dsums, int B, int C, int S) = 0;
  // dx = gamma * invstd * (dy - (dsums[:C] + xhat * dsums[C:2C]) / dsums[2C])   [overwritten]
  virtual void batchnorm_backward_data(const T* x, const T* dy, const T* mean, const T* invstd,
                                       const T* gamma, const T* dsums, T* dx, int B, int C,
                                       int S) = 0;

  // ---- objective kernels: B images of D values each, per-image outputs in nats ----
  // z = mu + exp(logvar / 2) * eps
  virtual void reparameterize(const T* mu, const T* logvar, const T* eps, T* z, size_t n) = 0;
  // dmu += dz;  dlogvar += dz * eps * exp(logvar / 2) / 2
  virtual void reparameterize_backward(const T* dz, const T* logvar, const T* eps, T* dmu,
                                       T* dlogvar, size_t n) = 0;
  // ll[b] = sum_d x*l - softplus(l) (Bernoulli on logits l); dlogits = scale * (x - sigmoid(l))
  // [dlogits overwritten; may be null]
  virtual void bernoulli_log_lik(const T* logits, const T* x, T* ll, T* dlogits, T scale, int B,
                                 int D) = 0;
  // ll[b] = sum_d -(log 2pi + v + (x - m)^2 e^-v) / 2 with v = max(logvar, floor) per value, or
  // v = fixed_logvar when logvar is null. dmean, dlogvar = scale * d ll / d (.) [overwritten;
  // may be null; dlogvar is zero where the floor is active].
  virtual void gaussian_log_lik(const T* mean, const T* logvar, T fixed_logvar, T logvar_floor,
                                const T* x, T* ll, T* dmean, T* dlogvar, T scale, int B, int D) = 0;
  // Analytic KL(N(mu, e^lv) || N(0, I)): kl[b] = sum_d (mu^2 + e^lv - lv - 1) / 2;
  // kl_dim[d] = sum_b of the same term (may be null).
  virtual void kl_std_normal(const T* mu, const T* logvar, T* kl, T* kl_dim, int B, int D) = 0;
  // dmu += scale * w[d] * mu;  dlogvar += scale * w[d] * (e^lv - 1) / 2   (w null: all ones)
  virtual void kl_std_normal_backward(const T* mu, const T* logvar, const T* dim_weight, T scale,
                                      T* dmu, T* dlogvar, int B, int D) = 0;
  // lp[b] = log N(z_b; 0, I) = -sum_d (log 2pi + z^2) / 2;  dz += scale * -z (dz may be null)
  virtual void std_normal_log_density(const T* z, T* lp, T* dz, T scale, int B, int D) = 0;
  // lq[b] = log N(z_b; mu, e^lv) = -sum_d (log 2pi + lv + (z - mu)^2 e^-lv) / 2   (no gradient)
  virtual void normal_log_density(const T* z, const T* mu, const T* logvar, T* lq, int B,
                                  int D) = 0;

  // ---- optimizer updates over a flat span ----
  virtual void adam_update(T* p, const T* g, T* m, T* v, size_t n, const AdamArgs& a) = 0;
  virtual void sgd_update(T* p, const T* g, T* velocity, size_t n, const SgdArgs& a) = 0;
};

// "reference" (plain loops, float or double) and "dnnl" (oneDNN, float).
std::unique_ptr<Backend<float>> make_backend(const std::string& name);

}  // namespace distvae
