// Parity of the dnnl backend's heavy primitives and activations against ReferenceBackend<float>:
// outputs within 1e-5 and gradients within 1e-4, as max|a - b| / max|b| per tensor.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/backend_dnnl.h"
#include "core/backend_reference.h"
#include "tests/rel_err.h"

namespace distvae {
namespace {

constexpr double kOutTol = 1e-5;
constexpr double kGradTol = 1e-4;

using Vec = std::vector<float>;

Vec uniform(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Vec v(n);
  for (float& x : v) x = u(gen);
  return v;
}

double rel_err(const Vec& a, const Vec& b) {
  return distvae::rel_err(a.data(), b.data(), a.size());
}

#define EXPECT_CLOSE(a, b, tol)                                           \
  do {                                                                    \
    double err_ = rel_err((a), (b));                                      \
    EXPECT_LE(err_, (tol)) << #a << " vs " << #b << ": rel err " << err_; \
  } while (0)

const ActSpec kActs[] = {{Act::none, 0.0f},   {Act::relu, 0.0f},     {Act::leaky_relu, 0.2f},
                         {Act::elu, 1.0f},    {Act::softplus, 0.0f}, {Act::tanh, 0.0f},
                         {Act::sigmoid, 0.0f}};

std::string act_label(ActSpec a) {
  return std::string(act_name(a.kind));
}

class BackendParity : public ::testing::Test {
 protected:
  DnnlBackend dnnl;
  ReferenceBackend<float> ref;
};

// ---- linear ----

struct LinearCase {
  int B, In, Out;
};

void check_linear(DnnlBackend& dn, ReferenceBackend<float>& rf, LinearCase c, ActSpec act,
                  bool bias, uint32_t seed) {
  SCOPED_TRACE("linear B=" + std::to_string(c.B) + " In=" + std::to_string(c.In) + " Out=" +
               std::to_string(c.Out) + " act=" + act_label(act) + (bias ? " bias" : " no bias"));
  const size_t nx = size_t(c.B) * c.In, nw = size_t(c.Out) * c.In, ny = size_t(c.B) * c.Out;
  Vec x = uniform(nx, seed), w = uniform(nw, seed + 1), b = uniform(c.Out, seed + 2),
      dy = uniform(ny, seed + 3);
  const float* bp = bias ? b.data() : nullptr;

  // y (B, Out) = act(x (B, In) . w^T + b)
  Vec y_d(ny), y_r(ny);
  dn.linear_forward(x.data(), w.data(), bp, y_d.data(), c.B, c.In, c.Out, act);
  rf.linear_forward(x.data(), w.data(), bp, y_r.data(), c.B, c.In, c.Out, act);
  EXPECT_CLOSE(y_d, y_r, kOutTol);

  // dx (B, In) = dy . w   [overwrites: start from garbage]
  Vec dx_d = uniform(nx, seed + 4), dx_r(nx);
  dn.linear_backward_data(dy.data(), w.data(), dx_d.data(), c.B, c.In, c.Out);
  rf.linear_backward_data(dy.data(), w.data(), dx_r.data(), c.B, c.In, c.Out);
  EXPECT_CLOSE(dx_d, dx_r, kGradTol);

  // dw += dy^T . x; db += sum_b dy   [accumulates onto a non-zero start]
  Vec dw0 = uniform(nw, seed + 5), db0 = uniform(c.Out, seed + 6);
  Vec dw_d = dw0, dw_r = dw0, db_d = db0, db_r = db0;
  float* dbd = bias ? db_d.data() : nullptr;
  float* dbr = bias ? db_r.data() : nullptr;
  dn.linear_backward_weights(x.data(), dy.data(), dw_d.data(), dbd, c.B, c.In, c.Out);
  rf.linear_backward_weights(x.data(), dy.data(), dw_r.data(), dbr, c.B, c.In, c.Out);
  EXPECT_CLOSE(dw_d, dw_r, kGradTol);
  if (bias) EXPECT_CLOSE(db_d, db_r, kGradTol);
}

TEST_F(BackendParity, LinearAllActivationsWithAndWithoutBias) {
  const LinearCase cases[] = {{1, 7, 5}, {3, 13, 11}, {16, 64, 32}, {5, 100, 1}, {1, 1, 1}};
  uint32_t seed = 100;
  for (LinearCase c : cases)
    for (ActSpec act : kActs)
      for (bool bias : {true, false}) check_linear(dnnl, ref, c, act, bias, seed += 10);
}

TEST_F(BackendParity, LinearBackwardWeightsAccumulates) {
  const int B = 6, In = 9, Out = 5;
  Vec x = uniform(size_t(B) * In, 1), dy = uniform(size_t(B) * Out, 2);
  Vec dw1(size_t(Out) * In), db1(Out), dw2(size_t(Out) * In), db2(Out);
  dnnl.linear_backward_weights(x.data(), dy.data(), dw1.data(), db1.data(), B, In, Out);
  dnnl.linear_backward_weights(x.data(), dy.data(), dw2.data(), db2.data(), B, In, Out);
  dnnl.linear_backward_weights(x.data(), dy.data(), dw2.data(), db2.data(), B, In, Out);
  for (float& v : dw1) v *= 2.0f;
  for (float& v : db1) v *= 2.0f;
  EXPECT_CLOSE(dw2, dw1, 1e-6);
  EXPECT_CLOSE(db2, db1, 1e-6);
}

// ---- conv2d / deconv2d ----

ConvGeom conv_geom(int B, int Cin, int H, int W, int Cout, int K, int s, int p) {
  ConvGeom g;
  g.B = B, g.Cin = Cin, g.H = H, g.W = W, g.Cout = Cout, g.K = K, g.stride = s, g.pad = p;
  g.Ho = (H + 2 * p - K) / s + 1;
  g.Wo = (W + 2 * p - K) / s + 1;
  return g;
}

ConvGeom deconv_geom(int B, int Cin, int H, int W, int Cout, int K, int s, int p, int out_pad) {
  ConvGeom g;
  g.B = B, g.Cin = Cin, g.H = H, g.W = W, g.Cout = Cout, g.K = K, g.stride = s, g.pad = p;
  g.Ho = (H - 1) * s - 2 * p + K + out_pad;
  g.Wo = (W - 1) * s - 2 * p + K + out_pad;
  return g;
}

std::string geom_label(const ConvGeom& g) {
  auto s = [](int v) { return std::to_string(v); };
  return "x (" + s(g.B) + "," + s(g.Cin) + "," + s(g.H) + "," + s(g.W) + ") -> (" + s(g.Cout) +
         "," + s(g.Ho) + "," + s(g.Wo) + ") k" + s(g.K) + " s" + s(g.stride) + " p" + s(g.pad);
}

// One check of forward, backward data and backward weights (accumulating) for conv or deconv.
void check_conv(DnnlBackend& dn, ReferenceBackend<float>& rf, const ConvGeom& g, ActSpec act,
                bool bias, bool deconv, uint32_t seed) {
  SCOPED_TRACE(std::string(deconv ? "deconv2d " : "conv2d ") + geom_label(g) +
               " act=" + act_label(act) + (bias ? " bias" : " no bias"));
  const size_t nx = size_t(g.B) * g.Cin * g.H * g.W, ny = size_t(g.B) * g.Cout * g.Ho * g.Wo,
               nw = size_t(g.Cout) * g.Cin * g.K * g.K;
  Vec x = uniform(nx, seed), w = uniform(nw, seed + 1), b = uniform(g.Cout, seed + 2),
      dy = uniform(ny, seed + 3);
  const float* bp = bias ? b.data() : nullptr;

  Vec y_d(ny), y_r(ny);
  if (deconv) {
    dn.deconv2d_forward(x.data(), w.data(), bp, y_d.data(), g, act);
    rf.deconv2d_forward(x.data(), w.data(), bp, y_r.data(), g, act);
  } else {
    dn.conv2d_forward(x.data(), w.data(), bp, y_d.data(), g, act);
    rf.conv2d_forward(x.data(), w.data(), bp, y_r.data(), g, act);
  }
  EXPECT_CLOSE(y_d, y_r, kOutTol);

  Vec dx_d = uniform(nx, seed + 4), dx_r(nx);  // overwritten: start from garbage
  if (deconv) {
    dn.deconv2d_backward_data(dy.data(), w.data(), dx_d.data(), g);
    rf.deconv2d_backward_data(dy.data(), w.data(), dx_r.data(), g);
  } else {
    dn.conv2d_backward_data(dy.data(), w.data(), dx_d.data(), g);
    rf.conv2d_backward_data(dy.data(), w.data(), dx_r.data(), g);
  }
  EXPECT_CLOSE(dx_d, dx_r, kGradTol);

  Vec dw0 = uniform(nw, seed + 5), db0 = uniform(g.Cout, seed + 6);
  Vec dw_d = dw0, dw_r = dw0, db_d = db0, db_r = db0;
  float* dbd = bias ? db_d.data() : nullptr;
  float* dbr = bias ? db_r.data() : nullptr;
  if (deconv) {
    dn.deconv2d_backward_weights(x.data(), dy.data(), dw_d.data(), dbd, g);
    rf.deconv2d_backward_weights(x.data(), dy.data(), dw_r.data(), dbr, g);
  } else {
    dn.conv2d_backward_weights(x.data(), dy.data(), dw_d.data(), dbd, g);
    rf.conv2d_backward_weights(x.data(), dy.data(), dw_r.data(), dbr, g);
  }
  EXPECT_CLOSE(dw_d, dw_r, kGradTol);
  if (bias) EXPECT_CLOSE(db_d, db_r, kGradTol);
}

// k3 s1 p1, k4 s2 p1, k5 s2 p2, k3 s3 p0, k1 s1 p0; odd sizes, batch 1, channels not a multiple of
// 8
std::vector<ConvGeom> conv_cases() {
  return {conv_geom(2, 3, 9, 7, 5, 3, 1, 1),  conv_geom(1, 5, 10, 11, 7, 4, 2, 1),
          conv_geom(3, 4, 13, 9, 6, 5, 2, 2), conv_geom(2, 6, 11, 10, 3, 3, 3, 0),
          conv_geom(1, 9, 5, 6, 13, 1, 1, 0), conv_geom(4, 1, 28, 28, 17, 4, 2, 1)};
}

std::vector<ConvGeom> deconv_cases() {
  return {deconv_geom(2, 5, 4, 3, 3, 3, 1, 1, 0), deconv_geom(1, 7, 5, 6, 5, 4, 2, 1, 0),
          deconv_geom(3, 6, 4, 5, 4, 5, 2, 2, 1), deconv_geom(2, 3, 3, 4, 6, 3, 2, 1, 1),
          deconv_geom(1, 4, 3, 3, 2, 3, 3, 0, 0), deconv_geom(2, 3, 4, 4, 5, 3, 3, 0, 2),
          deconv_geom(4, 17, 7, 7, 1, 4, 2, 1, 0)};
}

TEST_F(BackendParity, Conv2dGeometriesWithBias) {
  uint32_t seed = 1000;
  for (const ConvGeom& g : conv_cases()) check_conv(dnnl, ref, g, {}, true, false, seed += 10);
}

TEST_F(BackendParity, Conv2dWithoutBias) {
  uint32_t seed = 2000;
  for (const ConvGeom& g : conv_cases()) check_conv(dnnl, ref, g, {}, false, false, seed += 10);
}

TEST_F(BackendParity, Conv2dFusedActivations) {
  uint32_t seed = 3000;
  const ConvGeom g = conv_geom(2, 3, 7, 9, 5, 3, 1, 1);
  for (ActSpec act : kActs) check_conv(dnnl, ref, g, act, true, false, seed += 10);
}

TEST_F(BackendParity, Deconv2dGeometriesWithBias) {
  uint32_t seed = 4000;
  for (const ConvGeom& g : deconv_cases()) check_conv(dnnl, ref, g, {}, true, true, seed += 10);
}

TEST_F(BackendParity, Deconv2dWithoutBias) {
  uint32_t seed = 5000;
  for (const ConvGeom& g : deconv_cases()) check_conv(dnnl, ref, g, {}, false, true, seed += 10);
}

TEST_F(BackendParity, Deconv2dFusedActivations) {
  uint32_t seed = 6000;
  const ConvGeom g = deconv_geom(2, 5, 4, 5, 3, 4, 2, 1, 0);
  for (ActSpec act : kActs) check_conv(dnnl, ref, g, act, true, true, seed += 10);
}

TEST_F(BackendParity, ConvAndDeconvBackwardWeightsAccumulate) {
  for (bool deconv : {false, true}) {
    SCOPED_TRACE(deconv ? "deconv2d" : "conv2d");
    const ConvGeom g =
        deconv ? deconv_geom(2, 3, 4, 5, 4, 3, 2, 1, 1) : conv_geom(2, 3, 7, 6, 4, 3, 2, 1);
    Vec x = uniform(size_t(g.B) * g.Cin * g.H * g.W, 7);
    Vec dy = uniform(size_t(g.B) * g.Cout * g.Ho * g.Wo, 8);
    const size_t nw = size_t(g.Cout) * g.Cin * g.K * g.K;
    Vec dw1(nw), db1(g.Cout), dw2(nw), db2(g.Cout);
    auto bwd = [&](Vec& dw, Vec& db) {
      if (deconv)
        dnnl.deconv2d_backward_weights(x.data(), dy.data(), dw.data(), db.data(), g);
      else
        dnnl.conv2d_backward_weights(x.data(), dy.data(), dw.data(), db.data(), g);
    };
    bwd(dw1, db1);
    bwd(dw2, db2);
    bwd(dw2, db2);
    for (float& v : dw1) v *= 2.0f;
    for (float& v : db1) v *= 2.0f;
    EXPECT_CLOSE(dw2, dw1, 1e-6);
    EXPECT_CLOSE(db2, db1, 1e-6);
  }
}

// ---- activations ----

TEST_F(BackendParity, ActivationsForwardAndBackward) {
  uint32_t seed = 7000;
  for (size_t n : {size_t(1), size_t(7), size_t(1000), size_t(4099)})
    for (ActSpec act : kActs) {
      SCOPED_TRACE("act " + act_label(act) + " n=" + std::to_string(n));
      Vec x = uniform(n, seed += 10), dy = uniform(n, seed + 1);
      for (float& v : x) v *= 3.0f;  // reach the saturating parts of tanh and sigmoid
      Vec y_d(n), y_r(n);
      dnnl.act_forward(x.data(), y_d.data(), n, act);
      ref.act_forward(x.data(), y_r.data(), n, act);
      EXPECT_CLOSE(y_d, y_r, kOutTol);

      // backward from the reference's y so both see the same input
      Vec dx_d(n), dx_r(n);
      dnnl.act_backward(y_r.data(), dy.data(), dx_d.data(), n, act);
      ref.act_backward(y_r.data(), dy.data(), dx_r.data(), n, act);
      EXPECT_CLOSE(dx_d, dx_r, kGradTol);

      // in place: x == y forward, dy == dx backward
      Vec inplace = x;
      dnnl.act_forward(inplace.data(), inplace.data(), n, act);
      EXPECT_CLOSE(inplace, y_r, kOutTol);
      Vec dinplace = dy;
      dnnl.act_backward(y_r.data(), dinplace.data(), dinplace.data(), n, act);
      EXPECT_CLOSE(dinplace, dx_r, kGradTol);
    }
}

// ---- primitive cache and factory ----

TEST_F(BackendParity, RepeatedShapeReusesCachedPrimitive) {
  const ConvGeom g = conv_geom(2, 3, 8, 8, 4, 3, 1, 1);
  Vec x = uniform(size_t(g.B) * g.Cin * g.H * g.W, 1), w = uniform(size_t(g.Cout) * g.Cin * 9, 2);
  Vec y(size_t(g.B) * g.Cout * g.Ho * g.Wo), y2 = y;
  dnnl.conv2d_forward(x.data(), w.data(), nullptr, y.data(), g, {Act::relu, 0.0f});
  const size_t after_first = dnnl.cached_primitives();
  EXPECT_EQ(after_first, 1u);
  // same shape, different buffers: the cached primitive is rebound, not rebuilt
  Vec x2 = x;
  dnnl.conv2d_forward(x2.data(), w.data(), nullptr, y2.data(), g, {Act::relu, 0.0f});
  EXPECT_EQ(dnnl.cached_primitives(), after_first);
  EXPECT_EQ(y, y2);
  // a different activation or bias is a different primitive
  dnnl.conv2d_forward(x.data(), w.data(), nullptr, y.data(), g, {Act::tanh, 0.0f});
  EXPECT_EQ(dnnl.cached_primitives(), after_first + 1);
}

TEST(BackendFactoryParity, MakesBothBackendsAndRejectsUnknownNames) {
  EXPECT_EQ(make_backend("dnnl")->name(), "dnnl");
  EXPECT_EQ(make_backend("reference")->name(), "reference");
  try {
    make_backend("cudnn");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "unknown backend 'cudnn' (expected dnnl or reference)");
  }
}

// Errors name the primitive and its shapes (and, for oneDNN's own failures, file:line).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no exception)";
}

TEST(BackendErrorParity, InvalidGeometryNamesThePrimitiveAndShape) {
  DnnlBackend dnnl;
  Vec buf(1000);
  ConvGeom g = conv_geom(1, 2, 5, 5, 3, 3, 1, 1);
  g.K = 0;
  std::string msg =
      error_of([&] { dnnl.conv2d_forward(buf.data(), buf.data(), nullptr, buf.data(), g, {}); });
  EXPECT_NE(msg.find("conv2d forward"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(1, 2, 5, 5)"), std::string::npos) << msg;

  // an output too small to reach by padding: oneDNN cannot crop, the message says what it needs
  g = conv_geom(1, 2, 10, 10, 3, 3, 1, 0);
  g.Ho = g.Wo = 2;
  msg = error_of([&] { dnnl.conv2d_backward_data(buf.data(), buf.data(), buf.data(), g); });
  EXPECT_NE(msg.find("conv2d backward data"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(H + 2 * pad - K) / stride + 1"), std::string::npos) << msg;

  g = deconv_geom(1, 2, 4, 4, 3, 3, 2, 0, 0);
  g.Ho = g.Wo = 20;  // out_pad 11 > stride - 1 + pad
  msg =
      error_of([&] { dnnl.deconv2d_forward(buf.data(), buf.data(), nullptr, buf.data(), g, {}); });
  EXPECT_NE(msg.find("deconv2d forward"), std::string::npos) << msg;
  EXPECT_NE(msg.find("out_pad"), std::string::npos) << msg;
}

TEST(BackendErrorParity, OneDnnFailureBecomesRuntimeErrorWithContext) {
  DnnlBackend dnnl;
  Vec y(10, 0.3f), dx(10);
  // oneDNN's use-dst elu backward rejects a negative alpha
  const std::string msg = error_of([&] {
    dnnl.act_backward(y.data(), y.data(), dx.data(), y.size(), {Act::elu, -1.0f});
  });
  EXPECT_NE(msg.find("backend_dnnl.cpp:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("activation backward"), std::string::npos) << msg;
  EXPECT_NE(msg.find("10 values, act elu"), std::string::npos) << msg;
}

}  // namespace
}  // namespace distvae
