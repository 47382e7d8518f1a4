// Gradient checks of every layer kind through Network<double> on the reference backend against
// central finite differences, the param_grads / accumulation contract of backward, and
// network-level parity (outputs, input and parameter gradients) of every built backend -- dnnl,
// and cuda in a CUDA build -- against the reference backend in float.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/backends/reference.h"
#include "core/layers.h"
#include "core/network.h"
#include "core/rng.h"
#include "tests/core/backends/backend_list.h"
#include "tests/rel_err.h"

namespace distvae {
namespace {

// ---------------------------------------------------------------- spec helpers

LayerSpec lin(int64_t out, bool bias = true) {
  LayerSpec s;
  s.type = "linear";
  s.out = out;
  s.bias = bias;
  return s;
}

LayerSpec conv(int64_t out, int k, int stride, int pad, bool bias = true) {
  LayerSpec s;
  s.type = "conv2d";
  s.out = out;
  s.kernel = k;
  s.stride = stride;
  s.padding = pad;
  s.bias = bias;
  return s;
}

// A PixelCNN-masked conv2d: odd kernel k, stride 1, padding k / 2; mask "A" or "B".
LayerSpec masked(int64_t out, int k, const std::string& mask, bool bias = true) {
  LayerSpec s = conv(out, k, 1, k / 2, bias);
  s.mask = mask;
  return s;
}

LayerSpec deconv(int64_t out, int k, int stride, int pad, int out_pad = 0, bool bias = true) {
  LayerSpec s = conv(out, k, stride, pad, bias);
  s.type = "deconv2d";
  s.output_padding = out_pad;
  return s;
}

LayerSpec autoregressive() {
  LayerSpec s;
  s.type = "autoregressive";
  return s;
}

LayerSpec act(const std::string& name, float alpha = std::numeric_limits<float>::quiet_NaN()) {
  LayerSpec s;
  s.type = name;
  s.alpha = alpha;
  return s;
}

LayerSpec batchnorm() {
  return act("batchnorm");
}

LayerSpec flatten() {
  return act("flatten");
}

LayerSpec reshape(std::vector<int64_t> shape) {
  LayerSpec s;
  s.type = "reshape";
  s.shape = std::move(shape);
  return s;
}

bool has_kink(const std::string& type) {
  // relu and leaky_relu have a kink in the value; elu (alpha != 1) in the first derivative and
  // (alpha == 1) in the second, which central differences across 0 would also feel.
  return type == "relu" || type == "leaky_relu" || type == "elu";
}

// ---------------------------------------------------------------- numeric helpers

template <class T>
double max_abs(const T* a, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::abs(double(a[i])));
  return m;
}

template <class T>
std::vector<T> normals(uint64_t index, size_t n, double stddev = 1.0) {
  std::vector<T> v(n);
  normal_fill(2024, stream_id(rng_purpose::test, index), 0, n, v.data());
  for (T& x : v) x = T(x * stddev);
  return v;
}

bool is_bias(const ParamSlice& s) {
  const std::string suffix = ".bias";
  return s.name.size() > suffix.size() &&
         s.name.compare(s.name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Biases start at zero; give them values so the forward's bias add is exercised too.
template <class T>
void randomize_biases(Network<T>& net, uint64_t index) {
  for (const ParamSlice& s : net.params().slices()) {
    if (!is_bias(s)) continue;
    std::vector<T> b = normals<T>(index++, s.size, 0.3);
    std::copy(b.begin(), b.end(), net.params().values() + s.offset);
  }
}

// Batch norms start as the identity (gamma 1); other scales make gamma's role in dx visible.
template <class T>
void randomize_batchnorm_scales(Network<T>& net, uint64_t index) {
  for (const Layer& l : net.layers()) {
    if (l.kind != LayerKind::batchnorm) continue;
    const ParamSlice& s = net.params().slices()[l.weight];
    std::vector<T> g = normals<T>(index++, s.size, 0.5);
    for (size_t i = 0; i < s.size; ++i) net.params().values()[s.offset + i] = T(1) + g[i];
  }
}

// ---------------------------------------------------------------- the finite-difference check

struct Case {
  std::string label;
  Shape input;  // per sample
  std::vector<LayerSpec> specs;
  Shape image = Shape{};  // what an autoregressive layer puts before its feature map (held fixed)
};

constexpr double kFdStep = 1e-6;
constexpr double kFdTol = 1e-6;
// Smallest |pre-activation| allowed at a relu/leaky_relu/elu: a perturbation of h = 1e-6 of any one
// input or parameter moves a pre-activation by at most h times its partial derivative (well under
// 100 in these small nets), so no finite difference crosses a kink.
constexpr double kKinkMargin = 1e-4;

// The smallest |pre-activation| over every kinked activation of the case, for input x. The
// pre-activation of spec j is the output of the network built from specs[0, j), which shares the
// full network's leading parameters (same names, same flat offsets).
double kink_margin(Network<double>& net, const Case& c, const std::vector<double>& x,
                   const double* image, int B) {
  ReferenceBackend<double> be;
  double margin = INFINITY;
  for (size_t j = 0; j < c.specs.size(); ++j) {
    if (!has_kink(c.specs[j].type)) continue;
    const std::vector<LayerSpec> prefix(c.specs.begin(), c.specs.begin() + std::ptrdiff_t(j));
    Network<double> pre(be, net.name(), c.input, prefix, B, c.image);
    pre.set_training(true);
    const auto& ps = pre.params().slices();
    const auto& full = net.params().slices();
    EXPECT_LE(ps.size(), full.size());
    for (size_t k = 0; k < ps.size() && k < full.size(); ++k) {
      if (!ps[k].trainable) continue;  // state sits after the trainable values of each
      EXPECT_EQ(ps[k].name, full[k].name);
      EXPECT_EQ(ps[k].offset, full[k].offset);
    }
    std::copy(net.params().values(), net.params().values() + pre.params().size(),
              pre.params().values());
    const double* z = pre.forward(x.data(), B, image);
    const size_t n = size_t(B) * size_t(pre.output_shape().numel());
    for (size_t i = 0; i < n; ++i) margin = std::min(margin, std::abs(z[i]));
  }
  return margin;
}

void gradcheck(const Case& c, int B) {
  SCOPED_TRACE(c.label + ", batch " + std::to_string(B));
  ReferenceBackend<double> be;
  Network<double> net(be, "gc", c.input, c.specs, B, c.image);
  net.set_training(true);  // batch norms by the batch: part of what is differentiated
  net.init(7);
  randomize_biases(net, 1000);
  randomize_batchnorm_scales(net, 2000);

  const size_t nx = size_t(B) * size_t(c.input.numel());
  const size_t ny = size_t(B) * size_t(net.output_shape().numel());
  const std::vector<double> image = normals<double>(98, size_t(B) * size_t(c.image.numel()));
  const double* im = c.image.rank ? image.data() : nullptr;

  // Inputs away from every kink: redraw until the pre-activations keep their distance.
  std::vector<double> x;
  bool clear = false;
  for (uint64_t attempt = 0; attempt < 50 && !clear; ++attempt) {
    x = normals<double>(100 + attempt, nx);
    clear = kink_margin(net, c, x, im, B) > kKinkMargin;
  }
  ASSERT_TRUE(clear) << "no input found whose pre-activations stay " << kKinkMargin
                     << " away from the kinks";
  const std::vector<double> r = normals<double>(99, ny);

  // Analytic: L = sum(r . y), so dL/dy = r.
  auto loss = [&] {
    const double* y = net.forward(x.data(), B, im);
    double s = 0;
    for (size_t i = 0; i < ny; ++i) s += r[i] * y[i];
    return s;
  };
  loss();
  net.params().zero_grads();
  std::vector<double> dout = r;
  const double* dx = net.backward(dout.data(), B, ParamGrads::accumulate, /*need_dx=*/true);
  ASSERT_NE(dx, nullptr);
  const std::vector<double> ana_dx(dx, dx + nx);
  const std::vector<double> ana_g(net.params().grads(), net.params().grads() + net.params().size());

  // Central differences of L in every input and every parameter.
  auto central = [&](double* v) {
    const double keep = *v;
    *v = keep + kFdStep;
    const double lp = loss();
    *v = keep - kFdStep;
    const double lm = loss();
    *v = keep;
    return (lp - lm) / (2 * kFdStep);
  };
  std::vector<double> fd_dx(nx);
  for (size_t i = 0; i < nx; ++i) fd_dx[i] = central(&x[i]);
  std::vector<double> fd_g(net.params().size());
  for (size_t i = 0; i < fd_g.size(); ++i) fd_g[i] = central(net.params().values() + i);

  // The comparison means something only when the gradient is not (close to) zero.
  EXPECT_GT(max_abs(fd_dx.data(), nx), 1e-3) << "input gradient vanishes";
  EXPECT_LT(rel_err(ana_dx.data(), fd_dx.data(), nx), kFdTol) << "input gradient";
  for (const ParamSlice& s : net.params().slices()) {
    if (!s.trainable) continue;
    EXPECT_GT(max_abs(fd_g.data() + s.offset, s.size), 1e-3) << s.name << " gradient vanishes";
    EXPECT_LT(rel_err(ana_g.data() + s.offset, fd_g.data() + s.offset, s.size), kFdTol) << s.name;
  }
}

std::vector<Case> cases() {
  std::vector<Case> cs;
  // linear
  cs.push_back({"linear", Shape{13}, {lin(7)}});
  cs.push_back({"linear without bias", Shape{13}, {lin(7, false)}});
  cs.push_back({"mlp linear relu linear", Shape{13}, {lin(9), act("relu"), lin(5)}});
  // conv2d, the stride/padding combinations
  cs.push_back({"conv k3s1p1", Shape{2, 7, 9}, {conv(3, 3, 1, 1)}});
  cs.push_back({"conv k4s2p1", Shape{3, 9, 11}, {conv(4, 4, 2, 1)}});
  cs.push_back({"conv k3s2p0", Shape{2, 9, 11}, {conv(3, 3, 2, 0)}});
  cs.push_back({"conv k5s3p2", Shape{2, 10, 13}, {conv(3, 5, 3, 2)}});
  cs.push_back({"conv k3s1p1 without bias", Shape{2, 7, 9}, {conv(3, 3, 1, 1, false)}});
  // deconv2d, including output_padding
  cs.push_back({"deconv k3s1p1", Shape{2, 5, 6}, {deconv(3, 3, 1, 1)}});
  cs.push_back({"deconv k4s2p1", Shape{3, 4, 5}, {deconv(4, 4, 2, 1)}});
  cs.push_back({"deconv k3s2p0 op1", Shape{2, 3, 5}, {deconv(3, 3, 2, 0, 1)}});
  cs.push_back({"deconv k5s3p2", Shape{2, 3, 4}, {deconv(3, 5, 3, 2)}});
  cs.push_back({"deconv k5s3p2 op2", Shape{2, 3, 4}, {deconv(3, 5, 3, 2, 2)}});
  cs.push_back({"deconv k4s2p1 without bias", Shape{3, 4, 5}, {deconv(2, 4, 2, 1, 0, false)}});
  // activations: standalone (on the input, and after a flatten so not fused), fused after linear
  // and after conv
  const std::vector<LayerSpec> acts = {act("relu"), act("leaky_relu"), act("leaky_relu", 0.2f),
                                       act("elu"),  act("elu", 0.7f),  act("softplus"),
                                       act("tanh"), act("sigmoid")};
  for (const LayerSpec& a : acts) {
    char alpha[32] = "";
    if (a.alpha > 0) std::snprintf(alpha, sizeof alpha, " alpha %g", double(a.alpha));
    const std::string name = a.type + alpha;
    cs.push_back({name + " standalone", Shape{3, 5, 7}, {a}});
    cs.push_back({name + " standalone after flatten",
                  Shape{2, 5, 6},
                  {conv(3, 3, 2, 1), flatten(), a, lin(4)}});
    cs.push_back({name + " fused after linear", Shape{11}, {lin(6), a}});
    cs.push_back({name + " fused after conv", Shape{2, 6, 7}, {conv(3, 3, 1, 1), a}});
    cs.push_back({name + " fused after deconv", Shape{2, 3, 4}, {deconv(3, 4, 2, 1), a}});
  }
  // batch norm: over channels and over features, alone, with a fused activation, in a chain. A
  // bias right before it has no gradient (the mean is subtracted), so those layers have none.
  cs.push_back({"batchnorm channels", Shape{3, 4, 5}, {batchnorm()}});
  cs.push_back({"batchnorm fused relu after conv",
                Shape{2, 6, 7},
                {conv(3, 3, 1, 1, false), batchnorm(), act("relu"), conv(2, 3, 2, 1)}});
  cs.push_back({"batchnorm after deconv, fused tanh",
                Shape{2, 3, 4},
                {deconv(3, 4, 2, 1, 0, false), batchnorm(), act("tanh")}});
  // PixelCNN masks: the masked weights' gradients are zero on both sides
  cs.push_back({"masked conv A then B, fused relu",
                Shape{2, 5, 6},
                {masked(3, 3, "A"), act("relu"), masked(2, 5, "B", false)}});
  // An autoregressive decoder: a feature map of z, the image's channels before it, masked convs
  // (A's mask on the image's channels only) and a pointwise conv. The image is data: no gradient.
  cs.push_back({"autoregressive decoder",
                Shape{4},
                {lin(3 * 5 * 6), reshape({3, 5, 6}), autoregressive(), masked(4, 3, "A"),
                 act("relu"), masked(3, 3, "B"), act("tanh"), conv(2, 1, 1, 0)},
                Shape{2, 5, 6}});
  // views
  cs.push_back({"flatten", Shape{2, 6, 7}, {conv(3, 4, 2, 1), flatten(), lin(5)}});
  cs.push_back(
      {"reshape", Shape{12}, {lin(40), reshape({2, 4, 5}), deconv(2, 3, 2, 1, 1), act("tanh")}});
  // a small encoder-decoder chain with every kind at once
  cs.push_back({"conv-deconv chain",
                Shape{1, 11, 10},
                {conv(3, 4, 2, 1), act("relu"), conv(4, 3, 2, 0), act("leaky_relu"), flatten(),
                 lin(6), act("elu"), lin(4 * 2 * 2), reshape({4, 2, 2}), deconv(3, 4, 2, 1),
                 act("softplus"), deconv(1, 3, 2, 0, 1), act("sigmoid")}});
  return cs;
}

TEST(LayerGradcheck, EveryLayerKindMatchesCentralDifferences) {
  for (const Case& c : cases())
    for (int B : {1, 3}) gradcheck(c, B);
}

// Over features one sample has zero variance, so these need a batch.
TEST(LayerGradcheck, BatchNormOverFeaturesMatchesCentralDifferences) {
  gradcheck({"batchnorm features", Shape{6}, {batchnorm()}}, 4);
  gradcheck({"batchnorm features in an mlp, fused elu",
             Shape{7},
             {lin(6, false), batchnorm(), act("elu"), lin(3)}},
            5);
}

// The reference's own activation kernels must be what the check above relies on: the fused and
// unfused forms of each activation give the same output.
TEST(LayerGradcheck, FusedActivationEqualsSeparateLayer) {
  ReferenceBackend<double> be;
  for (const char* a : {"relu", "leaky_relu", "elu", "softplus", "tanh", "sigmoid"}) {
    SCOPED_TRACE(a);
    Network<double> fused(be, "f", Shape{2, 6, 7}, {conv(3, 3, 1, 1), act(a)}, 2);
    Network<double> split(be, "f", Shape{2, 6, 7}, {conv(3, 3, 1, 1), flatten(), act(a)}, 2);
    ASSERT_EQ(fused.layers().size(), 1u);
    ASSERT_EQ(split.layers().size(), 3u);
    fused.init(3);
    randomize_biases(fused, 50);
    std::copy(fused.params().values(), fused.params().values() + fused.params().size(),
              split.params().values());
    const std::vector<double> x = normals<double>(7, 2 * 2 * 6 * 7);
    const size_t n = 2 * 3 * 6 * 7;
    const double* y = fused.forward(x.data(), 2);
    const std::vector<double> y1(y, y + n);
    const double* y2 = split.forward(x.data(), 2);
    EXPECT_LT(rel_err(y1.data(), y2, n), 1e-15);
  }
}

// ---------------------------------------------------------------- the backward contract

const Case kContractNet = {"contract",
                           Shape{2, 7, 8},
                           {conv(3, 3, 2, 1), act("tanh"), flatten(), lin(6), act("sigmoid"),
                            lin(4 * 3 * 3), reshape({4, 3, 3}), deconv(2, 4, 2, 1)}};

TEST(NetworkBackward, WithoutParamGradsLeavesGradsUntouchedAndGivesSameDx) {
  ReferenceBackend<double> be;
  const int B = 3;
  Network<double> net(be, "c", kContractNet.input, kContractNet.specs, B);
  net.init(11);
  randomize_biases(net, 60);
  const size_t nx = size_t(B) * size_t(net.input_shape().numel());
  const size_t ny = size_t(B) * size_t(net.output_shape().numel());
  const size_t np = net.params().size();
  const std::vector<double> x = normals<double>(61, nx);
  const std::vector<double> r = normals<double>(62, ny);

  net.forward(x.data(), B);
  net.params().zero_grads();
  std::vector<double> dout = r;
  const double* dx = net.backward(dout.data(), B, ParamGrads::accumulate, true);
  const std::vector<double> dx_with(dx, dx + nx);
  ASSERT_GT(max_abs(net.params().grads(), np), 0.0);

  // Fill the grads with a sentinel pattern; backward without param grads must not touch it.
  const std::vector<double> sentinel = normals<double>(63, np);
  std::copy(sentinel.begin(), sentinel.end(), net.params().grads());
  dout = r;
  dx = net.backward(dout.data(), B, ParamGrads::none, /*need_dx=*/true);
  for (size_t i = 0; i < np; ++i) ASSERT_EQ(net.params().grads()[i], sentinel[i]) << "at " << i;
  for (size_t i = 0; i < nx; ++i) ASSERT_EQ(dx[i], dx_with[i]) << "dx at " << i;

  // need_dx = false returns null.
  dout = r;
  EXPECT_EQ(net.backward(dout.data(), B, ParamGrads::none, false), nullptr);
}

// A step's first backward pass overwrites whatever the gradient buffer held (no zeroing first),
// matching zero-then-add; a second pass adds to it. With a batch norm among the layers.
TEST(NetworkBackward, OverwritesThenAccumulatesParamGrads) {
  ReferenceBackend<double> be;
  const int B = 2;
  std::vector<LayerSpec> specs = kContractNet.specs;
  specs.insert(specs.begin() + 1, batchnorm());
  Network<double> net(be, "c", kContractNet.input, specs, B);
  net.init(12);
  randomize_biases(net, 70);
  net.set_training(true);
  const size_t np = net.params().size();
  const std::vector<double> x = normals<double>(71, size_t(B) * size_t(net.input_shape().numel()));
  const std::vector<double> r = normals<double>(72, size_t(B) * size_t(net.output_shape().numel()));

  net.forward(x.data(), B);
  net.params().zero_grads();
  std::vector<double> dout = r;
  net.backward(dout.data(), B, ParamGrads::accumulate, false);
  const std::vector<double> once(net.params().grads(), net.params().grads() + np);

  const std::vector<double> garbage = normals<double>(73, np);
  std::copy(garbage.begin(), garbage.end(), net.params().grads());
  dout = r;
  net.backward(dout.data(), B, ParamGrads::overwrite, false);
  EXPECT_LT(rel_err(net.params().grads(), once.data(), np), 1e-15) << "overwrite vs zero + add";

  dout = r;
  net.backward(dout.data(), B, ParamGrads::accumulate, false);
  std::vector<double> twice_expected(np);
  for (size_t i = 0; i < np; ++i) twice_expected[i] = 2 * once[i];
  for (const ParamSlice& s : net.params().slices()) {
    if (!s.trainable) continue;  // batch norm's running averages: no gradient
    ASSERT_GT(max_abs(once.data() + s.offset, s.size), 0.0) << s.name;
    EXPECT_LT(rel_err(net.params().grads() + s.offset, twice_expected.data() + s.offset, s.size),
              1e-14)
        << s.name;
  }
}

// ---------------------------------------------------------------- each backend vs reference, float

class NetworkParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string skip;
    be_ = make_test_backend(GetParam(), &skip);
    if (!be_) GTEST_SKIP() << skip;
  }
  void parity(const Case& c, int B);
  Backend<float>& backend() { return *be_; }

 private:
  std::unique_ptr<Backend<float>> be_;
};

// A PixelVAE-style decoder: z -> feature map (4, 6, 7), the image's 2 channels put before it, a
// masked stack, and a pointwise conv to 2 logits per pixel.
Case autoregressive_decoder() {
  return {"autoregressive decoder",
          Shape{5},
          {lin(4 * 6 * 7), reshape({4, 6, 7}), autoregressive(), masked(8, 5, "A"), act("relu"),
           masked(8, 3, "B"), act("tanh"), conv(2, 1, 1, 0)},
          Shape{2, 6, 7}};
}

void NetworkParity::parity(const Case& c, int B) {
  SCOPED_TRACE(c.label + ", batch " + std::to_string(B));
  Backend<float>& be = *be_;
  ReferenceBackend<float> ref;
  Network<float> a(be, "p", c.input, c.specs, B, c.image);
  Network<float> b(ref, "p", c.input, c.specs, B, c.image);
  b.init(21);
  randomize_biases(b, 80);
  ASSERT_EQ(a.params().size(), b.params().size());
  std::vector<float> host(b.params().size());
  std::copy(b.params().values(), b.params().values() + host.size(), host.begin());
  be.to_device(host.data(), a.params().values(), host.size());

  const size_t nx = size_t(B) * size_t(c.input.numel());
  const size_t ny = size_t(B) * size_t(b.output_shape().numel());
  const std::vector<float> x = normals<float>(81, nx);
  const std::vector<float> r = normals<float>(82, ny);
  BackendBuffer xa(be, x);  // the input stays valid until backward, as forward requires
  const std::vector<float> image = normals<float>(83, size_t(B) * size_t(c.image.numel()));
  BackendBuffer ima(be, image);
  const bool with_image = c.image.rank > 0;

  std::vector<float> ya(ny);
  be.to_host(a.forward(xa.get(), B, with_image ? ima.get() : nullptr), ya.data(), ny);
  const float* yb = b.forward(x.data(), B, with_image ? image.data() : nullptr);
  EXPECT_LT(rel_err(ya.data(), yb, ny), 1e-5) << "forward output";

  a.params().zero_grads();
  b.params().zero_grads();
  BackendBuffer da(be, r);
  std::vector<float> db = r;
  std::vector<float> dxa(nx);
  be.to_host(a.backward(da.get(), B, ParamGrads::accumulate, true), dxa.data(), nx);
  const float* dxb = b.backward(db.data(), B, ParamGrads::accumulate, true);
  EXPECT_LT(rel_err(dxa.data(), dxb, nx), 1e-4) << "input gradient";
  std::vector<float> ga(a.params().size());
  be.to_host(a.params().grads(), ga.data(), ga.size());
  for (const ParamSlice& s : b.params().slices()) {
    ASSERT_GT(max_abs(b.params().grads() + s.offset, s.size), 0.0) << s.name;
    EXPECT_LT(rel_err(ga.data() + s.offset, b.params().grads() + s.offset, s.size), 1e-4) << s.name;
  }
}

TEST_P(NetworkParity, Mlp) {
  const Case mlp = {
      "mlp",
      Shape{50},
      {lin(64), act("relu"), lin(32), act("tanh"), lin(20, false), act("leaky_relu"), lin(10)}};
  parity(mlp, 16);
  parity(mlp, 1);
}

TEST_P(NetworkParity, ConvDeconv) {
  const Case net = {"conv-deconv",
                    Shape{1, 12, 12},
                    {conv(8, 4, 2, 1), act("relu"), conv(16, 3, 2, 0), act("leaky_relu"), flatten(),
                     lin(24), act("elu"), lin(8 * 3 * 3), reshape({8, 3, 3}), deconv(4, 4, 2, 1),
                     act("softplus"), deconv(1, 3, 2, 0, 1), act("sigmoid")}};
  parity(net, 8);
  parity(net, 1);
  const Case strided = {"conv k5s3p2 / deconv k5s3p2 op2",
                        Shape{3, 13, 10},
                        {conv(5, 5, 3, 2, false), act("tanh"), deconv(2, 5, 3, 2, 2)}};
  parity(strided, 3);
}

TEST_P(NetworkParity, MaskedConv) {
  const Case net = {
      "masked A k7, B k3 x2",
      Shape{1, 9, 8},
      {masked(16, 7, "A"), act("relu"), masked(16, 3, "B"), act("relu"), masked(1, 3, "B")}};
  parity(net, 4);
  parity(autoregressive_decoder(), 3);
  // configs/fmnist_pixelvae.yaml's decoder: oneDNN picks its kernels by shape, so the shipped
  // shapes (28x28, 5 -> 32 channels at 7x7, 32 -> 32 at 3x3) get their own check.
  const Case shipped = {"fmnist_pixelvae decoder",
                        Shape{32},
                        {lin(512), act("relu"), lin(4 * 28 * 28), reshape({4, 28, 28}),
                         autoregressive(), masked(32, 7, "A"), act("relu"), masked(32, 3, "B"),
                         act("relu"), masked(32, 3, "B"), act("relu"), conv(1, 1, 1, 0)},
                        Shape{1, 28, 28}};
  parity(shipped, 16);
}

// ---------------------------------------------------------------- PixelCNN masks, every backend

// Output pixel p of a stack of masked convs (A first, then B) depends on the input pixels before p
// in raster order only: raising input pixel j leaves every output at pixels 0..j as it was, and
// moves some output after j. On the reference backend and on each backend under test.
void check_masks_causal(Backend<float>& be) {
  const int H = 6, W = 7, B = 2;
  const Case c = {
      "masked",
      Shape{1, H, W},
      {masked(8, 5, "A"), act("relu"), masked(8, 3, "B"), act("tanh"), masked(2, 3, "B")}};
  Network<float> net(be, "m", c.input, c.specs, B);
  net.init(31);
  randomize_biases(net, 90);
  const std::vector<float> x0 = normals<float>(91, size_t(B) * H * W);
  const size_t ny = size_t(B) * size_t(net.output_shape().numel());
  auto forward = [&](const std::vector<float>& x) {
    BackendBuffer xb(be, x);
    std::vector<float> y(ny);
    be.to_host(net.forward(xb.get(), B), y.data(), ny);
    return y;
  };
  const std::vector<float> y0 = forward(x0);
  for (int j : {0, 1, W - 1, W, 2 * W + 3, H * W - 2, H * W - 1}) {
    SCOPED_TRACE("input pixel " + std::to_string(j));
    std::vector<float> x = x0;
    x[size_t(j)] += 1.0f;  // sample 0, its only channel
    const std::vector<float> y = forward(x);
    double before = 0, after = 0;  // largest change at pixels <= j, and after j
    for (size_t i = 0; i < ny; ++i) {
      const int pixel = int(i % size_t(H * W));
      const double d = std::abs(double(y[i]) - double(y0[i]));
      if (i >= ny / B) {
        EXPECT_EQ(d, 0.0) << "sample 1 moved at output " << i;
      }
      (pixel <= j ? before : after) = std::max(pixel <= j ? before : after, d);
    }
    EXPECT_LE(before, 1e-6) << "an output at or before the raised pixel changed";
    if (j < H * W - 1) {
      EXPECT_GT(after, 1e-3) << "no output after the raised pixel changed";
    }
  }
}

// The same through an autoregressive decoder, where the image is the side input: raising image
// pixel j of either channel leaves every logit at pixels 0..j (both channels) as it was, and moves
// some logit after j; and the feature map, seen whole, moves logits at pixel 0 too.
void check_decoder_causal(Backend<float>& be) {
  const Case c = autoregressive_decoder();
  const int B = 2, C = int(c.image[0]), HW = int(c.image[1] * c.image[2]);
  Network<float> net(be, "d", c.input, c.specs, B, c.image);
  net.init(32);
  randomize_biases(net, 92);
  const std::vector<float> z0 = normals<float>(93, size_t(B) * size_t(c.input.numel()));
  std::vector<float> x0 = normals<float>(94, size_t(B) * C * HW);
  for (float& v : x0) v = v > 0 ? 1.0f : 0.0f;  // binary, as the images it models
  const size_t ny = size_t(B) * C * HW;
  auto forward = [&](const std::vector<float>& z, const std::vector<float>& x) {
    BackendBuffer zb(be, z), xb(be, x);
    std::vector<float> y(ny);
    be.to_host(net.forward(zb.get(), B, xb.get()), y.data(), ny);
    return y;
  };
  const std::vector<float> y0 = forward(z0, x0);
  for (int ch : {0, C - 1})
    for (int j : {0, 1, 6, 7, 20, HW - 2, HW - 1}) {
      SCOPED_TRACE("image channel " + std::to_string(ch) + ", pixel " + std::to_string(j));
      std::vector<float> x = x0;
      x[size_t(ch) * HW + size_t(j)] = 1.0f - x[size_t(ch) * HW + size_t(j)];  // image 0
      const std::vector<float> y = forward(z0, x);
      double before = 0, after = 0, other = 0;
      for (size_t i = 0; i < ny; ++i) {
        const double d = std::abs(double(y[i]) - double(y0[i]));
        if (i >= ny / B)
          other = std::max(other, d);
        else if (int(i % size_t(HW)) <= j)
          before = std::max(before, d);
        else
          after = std::max(after, d);
      }
      EXPECT_EQ(other, 0.0) << "image 1 moved";
      EXPECT_LE(before, 1e-6) << "a logit at or before the flipped pixel changed";
      if (j < HW - 1) {
        EXPECT_GT(after, 1e-3) << "no logit after the flipped pixel changed";
      }
    }
  std::vector<float> z = z0;
  z[0] += 1.0f;
  const std::vector<float> y = forward(z, x0);
  EXPECT_GT(std::abs(y[0] - y0[0]), 1e-4) << "the first pixel's logit does not see z";
}

TEST(MaskedConv, ReferenceSeesOnlyEarlierPixels) {
  ReferenceBackend<float> ref;
  check_masks_causal(ref);
  check_decoder_causal(ref);
}

TEST_P(NetworkParity, MaskedConvSeesOnlyEarlierPixels) {
  check_masks_causal(backend());
  check_decoder_causal(backend());
}

INSTANTIATE_TEST_SUITE_P(Backends, NetworkParity, ::testing::ValuesIn(backends_under_test()),
                         BackendName());

}  // namespace
}  // namespace distvae
