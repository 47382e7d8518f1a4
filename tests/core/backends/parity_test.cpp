// Parity of every built backend's heavy primitives and activations (dnnl, and cuda in a CUDA
// build: tests/core/backends/backend_list.h) against ReferenceBackend<float>: outputs within 1e-5
// and gradients within 1e-4, as max|a - b| / max|b| per tensor. Inputs go through the backend's own
// memory (to_device / to_host), so the same test runs on a GPU.
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
#include "core/backends/dnnl.h"
#include "core/backends/reference.h"
#include "tests/core/backends/backend_list.h"
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

// One backend under test per instance; skipped when this machine lacks its hardware.
class BackendParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string skip;
    be_ = make_test_backend(GetParam(), &skip);
    if (!be_) GTEST_SKIP() << skip;
  }
  Backend<float>& be() { return *be_; }
  ReferenceBackend<float> ref;

 private:
  std::unique_ptr<Backend<float>> be_;
};

// ---- linear ----

struct LinearCase {
  int B, In, Out;
};

void check_linear(Backend<float>& dn, ReferenceBackend<float>& rf, LinearCase c, ActSpec act,
                  bool bias, uint32_t seed) {
  SCOPED_TRACE("linear B=" + std::to_string(c.B) + " In=" + std::to_string(c.In) + " Out=" +
               std::to_string(c.Out) + " act=" + act_label(act) + (bias ? " bias" : " no bias"));
  const size_t nx = size_t(c.B) * c.In, nw = size_t(c.Out) * c.In, ny = size_t(c.B) * c.Out;
  Vec x = uniform(nx, seed), w = uniform(nw, seed + 1), b = uniform(c.Out, seed + 2),
      dy = uniform(ny, seed + 3);
  const float* bp = bias ? b.data() : nullptr;
  BackendBuffer xd(dn, x), wd(dn, w), bd(dn, b), dyd(dn, dy);

  // y (B, Out) = act(x (B, In) . w^T + b)
  BackendBuffer y_dev(dn, ny);
  Vec y_r(ny);
  dn.linear_forward(xd.get(), wd.get(), bias ? bd.get() : nullptr, y_dev.get(), c.B, c.In, c.Out,
                    act);
  rf.linear_forward(x.data(), w.data(), bp, y_r.data(), c.B, c.In, c.Out, act);
  EXPECT_CLOSE(y_dev.host(), y_r, kOutTol);

  // dx (B, In) = dy . w   [overwrites: start from garbage]
  BackendBuffer dx_dev(dn, uniform(nx, seed + 4));
  Vec dx_r(nx);
  dn.linear_backward_data(dyd.get(), wd.get(), dx_dev.get(), c.B, c.In, c.Out);
  rf.linear_backward_data(dy.data(), w.data(), dx_r.data(), c.B, c.In, c.Out);
  EXPECT_CLOSE(dx_dev.host(), dx_r, kGradTol);

  // dw (+)= dy^T . x; db (+)= sum_b dy   [from a non-zero start: added to, or overwritten]
  for (GradWrite write : {GradWrite::accumulate, GradWrite::overwrite}) {
    SCOPED_TRACE(write == GradWrite::accumulate ? "accumulate" : "overwrite");
    Vec dw0 = uniform(nw, seed + 5), db0 = uniform(c.Out, seed + 6);
    Vec dw_r = dw0, db_r = db0;
    BackendBuffer dw_dev(dn, dw0), db_dev(dn, db0);
    float* dbr = bias ? db_r.data() : nullptr;
    dn.linear_backward_weights(xd.get(), dyd.get(), dw_dev.get(), bias ? db_dev.get() : nullptr,
                               c.B, c.In, c.Out, write);
    rf.linear_backward_weights(x.data(), dy.data(), dw_r.data(), dbr, c.B, c.In, c.Out, write);
    EXPECT_CLOSE(dw_dev.host(), dw_r, kGradTol);
    if (bias) EXPECT_CLOSE(db_dev.host(), db_r, kGradTol);
  }
}

TEST_P(BackendParity, LinearAllActivationsWithAndWithoutBias) {
  const LinearCase cases[] = {{1, 7, 5}, {3, 13, 11}, {16, 64, 32}, {5, 100, 1}, {1, 1, 1}};
  uint32_t seed = 100;
  for (LinearCase c : cases)
    for (ActSpec act : kActs)
      for (bool bias : {true, false}) check_linear(be(), ref, c, act, bias, seed += 10);
}

// Parameters sit anywhere in a flat buffer: weights and biases at odd float offsets (for cuda,
// addresses that rule out cuBLASLt's 16-byte-aligned bias epilogue) give the same results.
TEST_P(BackendParity, LinearWithUnalignedParameters) {
  const LinearCase c{4, 10, 6};
  const size_t nw = size_t(c.Out) * c.In;
  Vec x = uniform(size_t(c.B) * c.In, 1), flat = uniform(1 + nw + c.Out, 2);
  const float* w = flat.data() + 1;
  const float* b = w + nw;
  BackendBuffer xd(be(), x), flat_d(be(), flat);
  for (ActSpec act : {ActSpec{Act::relu, 0.0f}, ActSpec{Act::tanh, 0.0f}, ActSpec{}}) {
    SCOPED_TRACE("act " + act_label(act));
    BackendBuffer y(be(), size_t(c.B) * c.Out);
    Vec y_r(size_t(c.B) * c.Out);
    be().linear_forward(xd.get(), flat_d.get() + 1, flat_d.get() + 1 + nw, y.get(), c.B, c.In,
                        c.Out, act);
    ref.linear_forward(x.data(), w, b, y_r.data(), c.B, c.In, c.Out, act);
    EXPECT_CLOSE(y.host(), y_r, kOutTol);
  }
}

// A step's first pass overwrites whatever the buffers held; a second pass adds to it.
TEST_P(BackendParity, LinearBackwardWeightsOverwritesThenAccumulates) {
  const int B = 6, In = 9, Out = 5;
  BackendBuffer x(be(), uniform(size_t(B) * In, 1)), dy(be(), uniform(size_t(B) * Out, 2));
  BackendBuffer dw1(be(), uniform(size_t(Out) * In, 3)), db1(be(), uniform(Out, 4)),
      dw2(be(), uniform(size_t(Out) * In, 5)), db2(be(), uniform(Out, 6));
  be().linear_backward_weights(x.get(), dy.get(), dw1.get(), db1.get(), B, In, Out,
                               GradWrite::overwrite);
  be().linear_backward_weights(x.get(), dy.get(), dw2.get(), db2.get(), B, In, Out,
                               GradWrite::overwrite);
  be().linear_backward_weights(x.get(), dy.get(), dw2.get(), db2.get(), B, In, Out,
                               GradWrite::accumulate);
  Vec twice_w = dw1.host(), twice_b = db1.host();
  for (float& v : twice_w) v *= 2.0f;
  for (float& v : twice_b) v *= 2.0f;
  EXPECT_CLOSE(dw2.host(), twice_w, 1e-6);
  EXPECT_CLOSE(db2.host(), twice_b, 1e-6);
}

// ---- conv2d / deconv2d ----

std::string geom_label(const ConvGeom& g) {
  auto s = [](int v) { return std::to_string(v); };
  return "x (" + s(g.B) + "," + s(g.Cin) + "," + s(g.H) + "," + s(g.W) + ") -> (" + s(g.Cout) +
         "," + s(g.Ho) + "," + s(g.Wo) + ") k" + s(g.K) + " s" + s(g.stride) + " p" + s(g.pad);
}

// One check of forward, backward data and backward weights (accumulating) for conv or deconv.
void check_conv(Backend<float>& dn, ReferenceBackend<float>& rf, const ConvGeom& g, ActSpec act,
                bool bias, bool deconv, uint32_t seed) {
  SCOPED_TRACE(std::string(deconv ? "deconv2d " : "conv2d ") + geom_label(g) +
               " act=" + act_label(act) + (bias ? " bias" : " no bias"));
  const size_t nx = size_t(g.B) * g.Cin * g.H * g.W, ny = size_t(g.B) * g.Cout * g.Ho * g.Wo,
               nw = size_t(g.Cout) * g.Cin * g.K * g.K;
  Vec x = uniform(nx, seed), w = uniform(nw, seed + 1), b = uniform(g.Cout, seed + 2),
      dy = uniform(ny, seed + 3);
  const float* bp = bias ? b.data() : nullptr;
  BackendBuffer xd(dn, x), wd(dn, w), bd(dn, b), dyd(dn, dy);
  const float* bpd = bias ? bd.get() : nullptr;

  BackendBuffer y_d(dn, ny);
  Vec y_r(ny);
  if (deconv) {
    dn.deconv2d_forward(xd.get(), wd.get(), bpd, y_d.get(), g, act);
    rf.deconv2d_forward(x.data(), w.data(), bp, y_r.data(), g, act);
  } else {
    dn.conv2d_forward(xd.get(), wd.get(), bpd, y_d.get(), g, act);
    rf.conv2d_forward(x.data(), w.data(), bp, y_r.data(), g, act);
  }
  EXPECT_CLOSE(y_d.host(), y_r, kOutTol);

  BackendBuffer dx_d(dn, uniform(nx, seed + 4));  // overwritten: start from garbage
  Vec dx_r(nx);
  if (deconv) {
    dn.deconv2d_backward_data(dyd.get(), wd.get(), dx_d.get(), g);
    rf.deconv2d_backward_data(dy.data(), w.data(), dx_r.data(), g);
  } else {
    dn.conv2d_backward_data(dyd.get(), wd.get(), dx_d.get(), g);
    rf.conv2d_backward_data(dy.data(), w.data(), dx_r.data(), g);
  }
  EXPECT_CLOSE(dx_d.host(), dx_r, kGradTol);

  for (GradWrite write : {GradWrite::accumulate, GradWrite::overwrite}) {
    SCOPED_TRACE(write == GradWrite::accumulate ? "accumulate" : "overwrite");
    Vec dw0 = uniform(nw, seed + 5), db0 = uniform(g.Cout, seed + 6);
    Vec dw_r = dw0, db_r = db0;
    BackendBuffer dw_d(dn, dw0), db_d(dn, db0);
    float* dbd = bias ? db_d.get() : nullptr;
    float* dbr = bias ? db_r.data() : nullptr;
    if (deconv) {
      dn.deconv2d_backward_weights(xd.get(), dyd.get(), dw_d.get(), dbd, g, write);
      rf.deconv2d_backward_weights(x.data(), dy.data(), dw_r.data(), dbr, g, write);
    } else {
      dn.conv2d_backward_weights(xd.get(), dyd.get(), dw_d.get(), dbd, g, write);
      rf.conv2d_backward_weights(x.data(), dy.data(), dw_r.data(), dbr, g, write);
    }
    EXPECT_CLOSE(dw_d.host(), dw_r, kGradTol);
    if (bias) EXPECT_CLOSE(db_d.host(), db_r, kGradTol);
  }
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

TEST_P(BackendParity, Conv2dGeometriesWithBias) {
  uint32_t seed = 1000;
  for (const ConvGeom& g : conv_cases()) check_conv(be(), ref, g, {}, true, false, seed += 10);
}

TEST_P(BackendParity, Conv2dWithoutBias) {
  uint32_t seed = 2000;
  for (const ConvGeom& g : conv_cases()) check_conv(be(), ref, g, {}, false, false, seed += 10);
}

TEST_P(BackendParity, Conv2dFusedActivations) {
  uint32_t seed = 3000;
  const ConvGeom g = conv_geom(2, 3, 7, 9, 5, 3, 1, 1);
  for (ActSpec act : kActs) check_conv(be(), ref, g, act, true, false, seed += 10);
}

TEST_P(BackendParity, Deconv2dGeometriesWithBias) {
  uint32_t seed = 4000;
  for (const ConvGeom& g : deconv_cases()) check_conv(be(), ref, g, {}, true, true, seed += 10);
}

TEST_P(BackendParity, Deconv2dWithoutBias) {
  uint32_t seed = 5000;
  for (const ConvGeom& g : deconv_cases()) check_conv(be(), ref, g, {}, false, true, seed += 10);
}

TEST_P(BackendParity, Deconv2dFusedActivations) {
  uint32_t seed = 6000;
  const ConvGeom g = deconv_geom(2, 5, 4, 5, 3, 4, 2, 1, 0);
  for (ActSpec act : kActs) check_conv(be(), ref, g, act, true, true, seed += 10);
}

TEST_P(BackendParity, ConvAndDeconvBackwardWeightsOverwriteThenAccumulate) {
  for (bool deconv : {false, true}) {
    SCOPED_TRACE(deconv ? "deconv2d" : "conv2d");
    const ConvGeom g =
        deconv ? deconv_geom(2, 3, 4, 5, 4, 3, 2, 1, 1) : conv_geom(2, 3, 7, 6, 4, 3, 2, 1);
    BackendBuffer x(be(), uniform(size_t(g.B) * g.Cin * g.H * g.W, 7));
    BackendBuffer dy(be(), uniform(size_t(g.B) * g.Cout * g.Ho * g.Wo, 8));
    const size_t nw = size_t(g.Cout) * g.Cin * g.K * g.K;
    BackendBuffer dw1(be(), uniform(nw, 9)), db1(be(), uniform(g.Cout, 10)),
        dw2(be(), uniform(nw, 11)), db2(be(), uniform(g.Cout, 12));
    auto bwd = [&](BackendBuffer<float>& dw, BackendBuffer<float>& db, GradWrite write) {
      if (deconv)
        be().deconv2d_backward_weights(x.get(), dy.get(), dw.get(), db.get(), g, write);
      else
        be().conv2d_backward_weights(x.get(), dy.get(), dw.get(), db.get(), g, write);
    };
    bwd(dw1, db1, GradWrite::overwrite);
    bwd(dw2, db2, GradWrite::overwrite);
    bwd(dw2, db2, GradWrite::accumulate);
    Vec twice_w = dw1.host(), twice_b = db1.host();
    for (float& v : twice_w) v *= 2.0f;
    for (float& v : twice_b) v *= 2.0f;
    EXPECT_CLOSE(dw2.host(), twice_w, 1e-6);
    EXPECT_CLOSE(db2.host(), twice_b, 1e-6);
  }
}

// ---- activations ----

TEST_P(BackendParity, ActivationsForwardAndBackward) {
  uint32_t seed = 7000;
  for (size_t n : {size_t(1), size_t(7), size_t(1000), size_t(4099)})
    for (ActSpec act : kActs) {
      SCOPED_TRACE("act " + act_label(act) + " n=" + std::to_string(n));
      Vec x = uniform(n, seed += 10), dy = uniform(n, seed + 1);
      for (float& v : x) v *= 3.0f;  // reach the saturating parts of tanh and sigmoid
      BackendBuffer xd(be(), x), dyd(be(), dy), y_d(be(), n);
      Vec y_r(n);
      be().act_forward(xd.get(), y_d.get(), n, act);
      ref.act_forward(x.data(), y_r.data(), n, act);
      EXPECT_CLOSE(y_d.host(), y_r, kOutTol);

      // backward from the reference's y so both see the same input
      BackendBuffer yr_d(be(), y_r), dx_d(be(), n);
      Vec dx_r(n);
      be().act_backward(yr_d.get(), dyd.get(), dx_d.get(), n, act);
      ref.act_backward(y_r.data(), dy.data(), dx_r.data(), n, act);
      EXPECT_CLOSE(dx_d.host(), dx_r, kGradTol);

      // in place: x == y forward, dy == dx backward
      BackendBuffer inplace(be(), x);
      be().act_forward(inplace.get(), inplace.get(), n, act);
      EXPECT_CLOSE(inplace.host(), y_r, kOutTol);
      BackendBuffer dinplace(be(), dy);
      be().act_backward(yr_d.get(), dinplace.get(), dinplace.get(), n, act);
      EXPECT_CLOSE(dinplace.host(), dx_r, kGradTol);
    }
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendParity, ::testing::ValuesIn(backends_under_test()),
                         BackendName());

// ---- dnnl's primitive cache, the factory, dnnl's error messages ----

TEST(DnnlCache, RepeatedShapeReusesCachedPrimitive) {
  DnnlBackend dnnl;
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

TEST(BackendFactoryParity, MakesTheCpuBackendsAndRejectsUnknownNames) {
  EXPECT_EQ(make_backend("dnnl")->name(), "dnnl");
  EXPECT_EQ(make_backend("reference")->name(), "reference");
  try {
    make_backend("cudnn");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "unknown backend 'cudnn' (expected dnnl, reference or cuda)");
  }
}

// "cuda" is a known name in every build; where it cannot run, the error says why.
TEST(BackendFactoryParity, CudaIsMadeOrRefusedWithTheReason) {
  std::string why;
  if (cuda_backend_built() && cuda_device_count(&why) > 0) {
    EXPECT_EQ(make_backend("cuda")->name(), "cuda");
    return;
  }
  try {
    make_backend("cuda");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    if (cuda_backend_built())
      EXPECT_NE(msg.find("no CUDA device"), std::string::npos) << msg;
    else
      EXPECT_NE(msg.find("built without CUDA"), std::string::npos) << msg;
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
  EXPECT_NE(msg.find("core/backends/dnnl.cpp:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("activation backward"), std::string::npos) << msg;
  EXPECT_NE(msg.find("10 values, act elu"), std::string::npos) << msg;
}

}  // namespace
}  // namespace distvae
