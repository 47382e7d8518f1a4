// End-to-end check of Network + Adam: a small MLP fits a known regression function; and the
// initializers' statistics match the Kaiming / Xavier formulas.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/backends/reference.h"
#include "core/network.h"
#include "core/optim.h"
#include "core/rng.h"

namespace distvae {
namespace {

LayerSpec spec(const std::string& type, int64_t out = 0) {
  LayerSpec s;
  s.type = type;
  s.out = out;
  return s;
}

LayerSpec conv(const std::string& type, int64_t out, int k, int stride, int pad) {
  LayerSpec s = spec(type, out);
  s.kernel = k;
  s.stride = stride;
  s.padding = pad;
  return s;
}

// The dnnl backend when it is built, else the float reference.
std::unique_ptr<Backend<float>> fit_backend() {
  try {
    return make_backend("dnnl");
  } catch (const std::runtime_error&) {
    return make_backend("reference");
  }
}

// ---------------------------------------------------------------- regression fit

// y = sin(x0) + 0.5 x1 x2 - x3^2 with x uniform in [-1.5, 1.5]^4.
void make_data(uint64_t stream, int n, std::vector<float>* x, std::vector<float>* y) {
  x->resize(size_t(n) * 4);
  y->resize(size_t(n));
  uniform_fill(5, stream_id(rng_purpose::test, stream), 0, x->size(), x->data());
  for (float& v : *x) v = 3.0f * v - 1.5f;
  for (int i = 0; i < n; ++i) {
    const float* xi = x->data() + size_t(i) * 4;
    (*y)[size_t(i)] = std::sin(xi[0]) + 0.5f * xi[1] * xi[2] - xi[3] * xi[3];
  }
}

double mse(const float* pred, const std::vector<float>& y) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += (double(pred[i]) - y[i]) * (double(pred[i]) - y[i]);
  return s / double(y.size());
}

TEST(NetworkFit, MlpWithAdamFitsRegression) {
  constexpr int kN = 256;
  constexpr int kSteps = 3000;
  constexpr double kTrainMse = 0.01;  // the stated target after kSteps full-batch Adam steps
  constexpr double kTestMse = 0.03;   // on 256 fresh points from the same distribution

  std::unique_ptr<Backend<float>> be = fit_backend();
  SCOPED_TRACE("backend " + be->name());
  Network<float> net(*be, "fit", Shape{4}, {spec("linear", 32), spec("tanh"), spec("linear", 1)},
                     kN);
  net.init(3);

  std::vector<float> x, y, xt, yt;
  make_data(1, kN, &x, &y);
  make_data(2, kN, &xt, &yt);

  OptimizerConfig cfg;
  cfg.kind = "adam";
  cfg.lr = 1e-2;
  OptimizerStateOwner<float> opt(*be, cfg, net.params().size());

  const double initial = mse(net.forward(x.data(), kN), y);
  // The fit must have something to do: predicting the mean alone gives Var(y) ~ 1.1.
  ASSERT_GT(initial, 20 * kTrainMse);

  std::vector<float> dout(kN);
  double train = initial;
  for (int step = 0; step < kSteps; ++step) {
    const float* pred = net.forward(x.data(), kN);
    train = mse(pred, y);
    // L = mean (pred - y)^2  ->  dL/dpred = 2 (pred - y) / N
    for (int i = 0; i < kN; ++i) dout[size_t(i)] = 2.0f * (pred[i] - y[size_t(i)]) / float(kN);
    net.params().zero_grads();
    net.backward(dout.data(), kN, ParamGrads::accumulate, /*need_dx=*/false);
    optimizer_step(*be, cfg, opt.state(), net.params().values(), net.params().grads(),
                   net.params().size(), cfg.lr);
  }
  train = mse(net.forward(x.data(), kN), y);
  const double test = mse(net.forward(xt.data(), kN), yt);
  std::printf("[ fit      ] %s: train MSE %.4g -> %.4g after %d Adam steps; test MSE %.4g\n",
              be->name().c_str(), initial, train, kSteps, test);
  EXPECT_LT(train, kTrainMse);
  EXPECT_LT(test, kTestMse);
}

// ---------------------------------------------------------------- init statistics

struct Moments {
  double mean = 0, std = 0;
};

Moments moments(const float* v, size_t n) {
  double s = 0, s2 = 0;
  for (size_t i = 0; i < n; ++i) s += v[i];
  const double mean = s / double(n);
  for (size_t i = 0; i < n; ++i) s2 += (v[i] - mean) * (v[i] - mean);
  return {mean, std::sqrt(s2 / double(n))};
}

// Initializes a one-layer network and checks its weights' mean ~ 0 and std within 5% of expected,
// and zero biases.
void check_init(const std::string& label, const Shape& input, const std::vector<LayerSpec>& specs,
                double expected_std) {
  SCOPED_TRACE(label);
  ReferenceBackend<float> be;
  Network<float> net(be, "init", input, specs, 1);
  net.init(42);
  const ParamSlice& w = net.params().slices().at(0);
  const Moments m = moments(net.params().values() + w.offset, w.size);
  EXPECT_NEAR(m.std / expected_std, 1.0, 0.05) << "std " << m.std << " vs " << expected_std;
  EXPECT_LT(std::abs(m.mean), 0.05 * expected_std);
  for (size_t s = 1; s < net.params().slices().size(); ++s) {
    const ParamSlice& b = net.params().slices()[s];
    for (size_t i = 0; i < b.size; ++i) ASSERT_EQ(net.params().values()[b.offset + i], 0.0f);
  }
}

TEST(NetworkInit, KaimingAndXavierStd) {
  LayerSpec leaky = spec("leaky_relu");
  leaky.alpha = 0.2f;
  // Kaiming (He) normal: std = sqrt(2 / fan_in), fan_in = In or Cin K^2.
  check_init("linear relu", Shape{1000}, {spec("linear", 600), spec("relu")},
             std::sqrt(2.0 / 1000));
  check_init("linear elu", Shape{1000}, {spec("linear", 600), spec("elu")}, std::sqrt(2.0 / 1000));
  check_init("conv relu", Shape{64, 8, 8}, {conv("conv2d", 128, 3, 1, 1), spec("relu")},
             std::sqrt(2.0 / (64 * 9)));
  // leaky relu: std = sqrt(2 / ((1 + a^2) fan_in)).
  check_init("linear leaky 0.2", Shape{1000}, {spec("linear", 600), leaky},
             std::sqrt(2.0 / (1.04 * 1000)));
  // Xavier (Glorot) normal: std = sqrt(2 / (fan_in + fan_out)), also when no activation follows.
  check_init("linear tanh", Shape{1000}, {spec("linear", 600), spec("tanh")},
             std::sqrt(2.0 / (1000 + 600)));
  check_init("linear", Shape{1000}, {spec("linear", 600)}, std::sqrt(2.0 / (1000 + 600)));
  check_init("conv sigmoid", Shape{64, 8, 8}, {conv("conv2d", 128, 3, 1, 1), spec("sigmoid")},
             std::sqrt(2.0 / (64 * 9 + 128 * 9)));
  // A deconv with stride 1 has fan_in Cin K^2 like a conv.
  check_init("deconv s1 relu", Shape{64, 8, 8}, {conv("deconv2d", 128, 3, 1, 1), spec("relu")},
             std::sqrt(2.0 / (64 * 9)));
}

// What Kaiming init is for: with x ~ N(0, 1), the pre-activation z of a relu layer has
// E[z^2] = 2 (so relu(z) keeps E[y^2] = 1). For a strided deconvolution each interior output sums
// only Cin (K / stride)^2 taps, so this checks the initializer counts the taps that way.
TEST(NetworkInit, KaimingKeepsPreactivationScale) {
  struct Geo {
    std::string label;
    Shape input;
    LayerSpec layer;
    int border;  // outputs this close to the edge see fewer taps; skip them
  };
  const std::vector<Geo> geos = {
      {"linear", Shape{512}, spec("linear", 512), 0},
      {"conv k3s1p1", Shape{32, 16, 16}, conv("conv2d", 64, 3, 1, 1), 1},
      {"deconv k4s2p1", Shape{32, 16, 16}, conv("deconv2d", 64, 4, 2, 1), 2},
  };
  for (const Geo& g : geos) {
    SCOPED_TRACE(g.label);
    ReferenceBackend<float> be;
    // Without the relu in the spec, Xavier would be used; with it, the network's output is
    // relu(z). Build the net with relu for the init, and a copy without it to read z.
    Network<float> with(be, "k", g.input, {g.layer, spec("relu")}, 8);
    Network<float> without(be, "k", g.input, {g.layer}, 8);
    with.init(9);
    std::copy(with.params().values(), with.params().values() + with.params().size(),
              without.params().values());
    std::vector<float> x(size_t(8) * size_t(g.input.numel()));
    normal_fill(6, stream_id(rng_purpose::test, 77), 0, x.size(), x.data());
    const float* z = without.forward(x.data(), 8);
    const Shape& o = without.output_shape();
    double s2 = 0;
    size_t n = 0;
    for (int64_t i = 0; i < 8 * o.numel(); ++i) {
      if (o.rank == 3) {
        const int64_t h = (i / o[2]) % o[1], w = i % o[2];
        if (h < g.border || w < g.border || h >= o[1] - g.border || w >= o[2] - g.border) continue;
      }
      s2 += double(z[i]) * z[i];
      ++n;
    }
    EXPECT_NEAR(s2 / double(n), 2.0, 0.1) << "E[z^2] over " << n << " values";
  }
}

TEST(NetworkInit, LayersAndNetworksDrawDifferentWeights) {
  ReferenceBackend<float> be;
  const std::vector<LayerSpec> specs = {spec("linear", 64), spec("linear", 64)};
  Network<float> a(be, "encoder", Shape{64}, specs, 1);
  Network<float> b(be, "decoder", Shape{64}, specs, 1);
  Network<float> a2(be, "encoder", Shape{64}, specs, 1);
  a.init(1);
  b.init(1);
  a2.init(1);
  const auto& s = a.params().slices();
  const float* w0 = a.params().values() + s[0].offset;
  const float* w1 = a.params().values() + s[2].offset;
  const float* v0 = b.params().values() + s[0].offset;
  int same01 = 0, same_ab = 0;
  for (size_t i = 0; i < s[0].size; ++i) {
    same01 += w0[i] == w1[i];
    same_ab += w0[i] == v0[i];
  }
  EXPECT_LT(same01, 5);
  EXPECT_LT(same_ab, 5);
  // Same seed and name: the same weights (the init is a pure function of seed, name and layer).
  for (size_t i = 0; i < a.params().size(); ++i)
    ASSERT_EQ(a.params().values()[i], a2.params().values()[i]);
}

}  // namespace
}  // namespace distvae
