// Tests for building networks from layer specs: malformed specs are rejected with a message naming
// the network, the layer and the problem; well-formed ones get the shapes the formulas give; and
// the YAML layer-list parser (launch/config/layer_spec_yaml.h) names the offending key path.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/backends/reference.h"
#include "core/layers.h"
#include "core/network.h"
#include "launch/config/config_error.h"
#include "launch/config/layer_spec_yaml.h"

namespace distvae {
namespace {

// Passes when `text` contains `part`; the failure message shows both.
::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

LayerSpec spec(const std::string& type, int64_t out = 0) {
  LayerSpec s;
  s.type = type;
  s.out = out;
  return s;
}

LayerSpec conv(const std::string& type, int64_t out, int k, int stride, int pad, int op = 0) {
  LayerSpec s = spec(type, out);
  s.kernel = k;
  s.stride = stride;
  s.padding = pad;
  s.output_padding = op;
  return s;
}

LayerSpec reshape(std::vector<int64_t> shape) {
  LayerSpec s = spec("reshape");
  s.shape = std::move(shape);
  return s;
}

// Runs f, which must throw E; returns the message (empty, with a test failure, otherwise).
template <class E>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw the wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

std::string plan_error(const Shape& input, const std::vector<LayerSpec>& specs) {
  return error_of<NetworkSpecError>([&] { plan_layers("encoder", input, specs); });
}

// ---------------------------------------------------------------- malformed specs

TEST(NetworkSpec, UnknownLayerType) {
  const std::string m = plan_error(Shape{10}, {spec("linear", 5), spec("relu"), spec("lineer", 3)});
  EXPECT_TRUE(Contains(m, "encoder"));
  EXPECT_TRUE(Contains(m, "layer 2"));
  EXPECT_TRUE(Contains(m, "lineer"));
  EXPECT_TRUE(Contains(m, "unknown layer type"));
}

TEST(NetworkSpec, LinearMissingOut) {
  const std::string m = plan_error(Shape{10}, {spec("linear", 5), spec("linear")});
  EXPECT_TRUE(Contains(m, "encoder"));
  EXPECT_TRUE(Contains(m, "layer 1"));
  EXPECT_TRUE(Contains(m, "'out'"));
}

TEST(NetworkSpec, ConvMissingKernel) {
  const std::string m = plan_error(Shape{1, 28, 28}, {conv("conv2d", 8, 0, 1, 0)});
  EXPECT_TRUE(Contains(m, "encoder"));
  EXPECT_TRUE(Contains(m, "layer 0"));
  EXPECT_TRUE(Contains(m, "'kernel'"));
  const std::string d = plan_error(Shape{4, 7, 7}, {conv("deconv2d", 8, 0, 2, 1)});
  EXPECT_TRUE(Contains(d, "layer 0"));
  EXPECT_TRUE(Contains(d, "'kernel'"));
}

TEST(NetworkSpec, LinearAfterConvWithoutFlatten) {
  const std::string m =
      plan_error(Shape{1, 28, 28}, {conv("conv2d", 32, 4, 2, 1), spec("relu"), spec("linear", 10)});
  EXPECT_TRUE(Contains(m, "encoder"));
  EXPECT_TRUE(Contains(m, "layer 2"));
  EXPECT_TRUE(Contains(m, "(32, 14, 14)"));  // the shape it got
  EXPECT_TRUE(Contains(m, "flatten"));       // and what to do about it
}

TEST(NetworkSpec, ConvOnFlatInput) {
  const std::string m = plan_error(Shape{784}, {conv("conv2d", 8, 3, 1, 1)});
  EXPECT_TRUE(Contains(m, "layer 0"));
  EXPECT_TRUE(Contains(m, "(784)"));
  EXPECT_TRUE(Contains(m, "reshape"));
}

TEST(NetworkSpec, ReshapeOfWrongSize) {
  const std::string m = plan_error(Shape{16}, {spec("linear", 64 * 7 * 7), reshape({64, 7, 8})});
  EXPECT_TRUE(Contains(m, "encoder"));
  EXPECT_TRUE(Contains(m, "layer 1"));
  EXPECT_TRUE(Contains(m, "3136"));  // input values
  EXPECT_TRUE(Contains(m, "3584"));  // target values
  const std::string e = plan_error(Shape{16}, {reshape({})});
  EXPECT_TRUE(Contains(e, "layer 0"));
  EXPECT_TRUE(Contains(e, "'shape'"));
  const std::string z = plan_error(Shape{16}, {reshape({4, 0, 4})});
  EXPECT_TRUE(Contains(z, "'shape'"));
}

TEST(NetworkSpec, DeclaredInMismatch) {
  LayerSpec l = spec("linear", 10);
  l.in = 100;
  const std::string m = plan_error(Shape{784}, {l});
  EXPECT_TRUE(Contains(m, "encoder"));
  EXPECT_TRUE(Contains(m, "layer 0"));
  EXPECT_TRUE(Contains(m, "100"));
  EXPECT_TRUE(Contains(m, "784"));

  LayerSpec c = conv("conv2d", 8, 3, 1, 1);
  c.in = 3;
  const std::string mc = plan_error(Shape{1, 28, 28}, {c});
  EXPECT_TRUE(Contains(mc, "layer 0"));
  EXPECT_TRUE(Contains(mc, "in: 3"));

  // A matching declaration is fine.
  l.in = 784;
  EXPECT_NO_THROW(plan_layers("encoder", Shape{784}, {l}));
}

TEST(NetworkSpec, KernelLargerThanInput) {
  const std::string m =
      plan_error(Shape{1, 28, 28}, {conv("conv2d", 8, 4, 2, 1), spec("relu"),
                                    conv("conv2d", 8, 4, 2, 1), conv("conv2d", 8, 9, 1, 0)});
  EXPECT_TRUE(Contains(m, "encoder"));
  EXPECT_TRUE(Contains(m, "layer 3"));
  EXPECT_TRUE(Contains(m, "kernel 9"));
  EXPECT_TRUE(Contains(m, "7x7"));
  // With enough padding the same kernel fits: 7 + 2*1 = 9.
  EXPECT_NO_THROW(plan_layers("encoder", Shape{1, 7, 7}, {conv("conv2d", 8, 9, 1, 1)}));
}

TEST(NetworkSpec, BadOutputPadding) {
  const std::string m = plan_error(Shape{64, 7, 7}, {conv("deconv2d", 32, 4, 2, 1, 2)});
  EXPECT_TRUE(Contains(m, "encoder"));
  EXPECT_TRUE(Contains(m, "layer 0"));
  EXPECT_TRUE(Contains(m, "'output_padding'"));
  const std::string n = plan_error(Shape{64, 7, 7}, {conv("deconv2d", 32, 4, 2, 1, -1)});
  EXPECT_TRUE(Contains(n, "'output_padding'"));
  const std::string c = plan_error(Shape{1, 28, 28}, {conv("conv2d", 32, 4, 2, 1, 1)});
  EXPECT_TRUE(Contains(c, "'output_padding'"));
}

TEST(NetworkSpec, BadStridePaddingAlphaAndEmptyOutput) {
  EXPECT_TRUE(Contains(plan_error(Shape{1, 8, 8}, {conv("conv2d", 4, 3, 0, 1)}), "'stride'"));
  EXPECT_TRUE(Contains(plan_error(Shape{1, 8, 8}, {conv("conv2d", 4, 3, 1, -1)}), "'padding'"));
  LayerSpec leaky = spec("leaky_relu");
  leaky.alpha = 0.0f;
  EXPECT_TRUE(Contains(plan_error(Shape{8}, {spec("linear", 4), leaky}), "'alpha'"));
  // deconv of a 1x1 input with k2 s1 p1: Ho = 0 * 1 - 2 + 2 = 0.
  EXPECT_TRUE(Contains(plan_error(Shape{4, 1, 1}, {conv("deconv2d", 2, 2, 1, 1)}), "empty"));
}

TEST(NetworkSpec, NetworkConstructorRejectsSpecAndBatch) {
  ReferenceBackend<float> be;
  const std::string m = error_of<NetworkSpecError>([&] {
    Network<float> n(be, "decoder", Shape{4}, {spec("linear", 8), spec("conv2d", 2)}, 4);
  });
  EXPECT_TRUE(Contains(m, "decoder"));
  EXPECT_TRUE(Contains(m, "layer 1"));
  EXPECT_TRUE(Contains(error_of<NetworkSpecError>([&] {
                         Network<float> n(be, "decoder", Shape{4}, {spec("linear", 8)}, 0);
                       }),
                       "decoder"));
}

// ---------------------------------------------------------------- well-formed specs

// A PixelCNN mask needs a conv2d that keeps each pixel in place, and names A or B.
TEST(NetworkSpec, ConvMasks) {
  auto masked = [](int k, int stride, int pad, const std::string& mask,
                   const std::string& type = "conv2d") {
    LayerSpec s = conv(type, 8, k, stride, pad);
    s.mask = mask;
    return s;
  };
  const std::vector<Layer> ok = plan_layers(
      "decoder", Shape{1, 28, 28}, {masked(7, 1, 3, "A"), spec("relu"), masked(3, 1, 1, "B")});
  EXPECT_EQ(ok[0].mask, ConvMask::A);
  EXPECT_EQ(ok[1].mask, ConvMask::B);
  EXPECT_EQ(ok[1].out, (Shape{8, 28, 28}));
  for (const auto& [bad, want] : std::vector<std::pair<LayerSpec, std::string>>{
           {masked(4, 1, 2, "A"), "odd kernel"},
           {masked(3, 2, 1, "A"), "stride 1"},
           {masked(5, 1, 1, "B"), "padding kernel / 2"},
           {masked(3, 1, 1, "C"), "'mask' must be A"},
           {masked(3, 1, 1, "A", "deconv2d"), "'mask' does not apply to deconv2d"}}) {
    const std::string m = plan_error(Shape{1, 9, 9}, {bad});
    EXPECT_TRUE(Contains(m, want)) << m;
    EXPECT_TRUE(Contains(m, "layer 0")) << m;
  }
}

// The autoregressive layer: [image | feature map] along channels, after which every layer must
// keep pixel p blind to the image at p and after; each way of breaking that is named.
TEST(NetworkSpec, Autoregressive) {
  auto masked = [](int out, int k, const std::string& mask) {
    LayerSpec s = conv("conv2d", out, k, 1, k / 2);
    s.mask = mask;
    return s;
  };
  const Shape z{6}, image{2, 5, 5};
  const LayerSpec lin = spec("linear", 3 * 25), to_map = reshape({3, 5, 5});
  const LayerSpec ar = spec("autoregressive");
  const std::vector<Layer> ok = plan_layers("decoder", z,
                                            {lin, to_map, ar, masked(8, 5, "A"), spec("relu"),
                                             masked(8, 3, "B"), conv("conv2d", 2, 1, 1, 0)},
                                            image);
  ASSERT_EQ(ok.size(), 6u);  // relu fused into the A layer
  EXPECT_EQ(ok[2].kind, LayerKind::with_image);
  EXPECT_EQ(ok[2].out, (Shape{5, 5, 5}));
  EXPECT_EQ(ok[3].mask_channels, 2);  // the image's channels; the feature map's are seen whole
  EXPECT_EQ(ok[4].mask_channels, 0);  // the whole input
  EXPECT_EQ(ok[5].out, image);
  const std::vector<std::pair<std::vector<LayerSpec>, std::string>> bad = {
      {{lin, to_map, ar, conv("conv2d", 2, 3, 1, 1)}, "needs mask: A"},
      {{lin, to_map, ar, masked(2, 3, "B")}, "needs mask: A"},
      {{lin, to_map, ar, masked(4, 3, "A"), conv("conv2d", 2, 3, 1, 1)}, "needs mask: B"},
      {{lin, to_map, ar, masked(4, 3, "A"), spec("batchnorm")}, "batchnorm mixes pixels"},
      {{lin, to_map, ar, masked(4, 3, "A"), spec("flatten")}, "flatten mixes pixels"},
      {{lin, to_map, ar, masked(4, 3, "A"), ar}, "at most one 'autoregressive'"},
      {{lin, to_map, ar}, "needs a conv2d with mask: A after it"},
      {{lin, ar, masked(2, 3, "A")}, "needs a feature map (channels, 5, 5)"},
      {{spec("linear", 3 * 16), reshape({3, 4, 4}), ar, masked(2, 3, "A")}, "got (3, 4, 4)"},
  };
  for (const auto& [specs, want] : bad) {
    const std::string m =
        error_of<NetworkSpecError>([&] { plan_layers("decoder", z, specs, image); });
    EXPECT_TRUE(Contains(m, want)) << m;
    EXPECT_TRUE(Contains(m, "decoder layer ")) << m;
  }
  const std::string m = plan_error(Shape{3, 5, 5}, {ar, masked(2, 3, "A")});
  EXPECT_TRUE(Contains(m, "only a VAE's decoder sees the image")) << m;
}

TEST(NetworkSpec, ConvShapes) {
  // (28 + 2 - 4) / 2 + 1 = 14
  auto l = plan_layers("enc", Shape{1, 28, 28}, {conv("conv2d", 32, 4, 2, 1)});
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].kind, LayerKind::conv2d);
  EXPECT_EQ(l[0].out, (Shape{32, 14, 14}));
  // (14 + 2 - 4) / 2 + 1 = 7; (7 - 3) / 2 + 1 = 3; (10 + 4 - 5) / 3 + 1 = 4
  l = plan_layers(
      "enc", Shape{1, 28, 28},
      {conv("conv2d", 32, 4, 2, 1), conv("conv2d", 64, 4, 2, 1), conv("conv2d", 8, 3, 2, 0)});
  EXPECT_EQ(l[1].out, (Shape{64, 7, 7}));
  EXPECT_EQ(l[2].out, (Shape{8, 3, 3}));
  l = plan_layers("enc", Shape{3, 10, 13}, {conv("conv2d", 5, 5, 3, 2)});
  EXPECT_EQ(l[0].out, (Shape{5, 4, 5}));
  EXPECT_EQ(l[0].geom.Cin, 3);
  EXPECT_EQ(l[0].geom.K, 5);
  EXPECT_EQ(l[0].geom.stride, 3);
  EXPECT_EQ(l[0].geom.pad, 2);
}

TEST(NetworkSpec, DeconvShapes) {
  // (7 - 1) * 2 - 2 + 4 = 14
  auto l = plan_layers("dec", Shape{64, 7, 7}, {conv("deconv2d", 32, 4, 2, 1)});
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].kind, LayerKind::deconv2d);
  EXPECT_EQ(l[0].out, (Shape{32, 14, 14}));
  // (3 - 1) * 2 - 0 + 3 + 1 = 8 (output_padding), (4 - 1) * 3 - 4 + 5 + 2 = 12
  l = plan_layers("dec", Shape{8, 3, 3}, {conv("deconv2d", 4, 3, 2, 0, 1)});
  EXPECT_EQ(l[0].out, (Shape{4, 8, 8}));
  l = plan_layers("dec", Shape{8, 4, 4}, {conv("deconv2d", 4, 5, 3, 2, 2)});
  EXPECT_EQ(l[0].out, (Shape{4, 12, 12}));
}

TEST(NetworkSpec, ViewsAndLinearShapes) {
  auto l = plan_layers("dec", Shape{16},
                       {spec("linear", 64 * 7 * 7), reshape({64, 7, 7}),
                        conv("deconv2d", 1, 4, 2, 1), spec("flatten"), spec("linear", 3)});
  ASSERT_EQ(l.size(), 5u);
  EXPECT_EQ(l[0].out, (Shape{3136}));
  EXPECT_EQ(l[1].kind, LayerKind::view);
  EXPECT_EQ(l[1].out, (Shape{64, 7, 7}));
  EXPECT_EQ(l[2].out, (Shape{1, 14, 14}));
  EXPECT_EQ(l[3].kind, LayerKind::view);
  EXPECT_EQ(l[3].out, (Shape{196}));
  EXPECT_EQ(l[4].in, (Shape{196}));
  EXPECT_EQ(l[4].out, (Shape{3}));
  for (size_t i = 0; i < l.size(); ++i) EXPECT_EQ(l[i].name, "dec." + std::to_string(i));
}

TEST(NetworkSpec, ActivationFusion) {
  // linear + relu becomes one layer; a second activation after a fused one stays separate; an
  // activation after a view is not fused.
  LayerSpec leaky = spec("leaky_relu");
  leaky.alpha = 0.2f;
  auto l = plan_layers("n", Shape{10},
                       {spec("linear", 8), spec("relu"), spec("linear", 6), leaky, spec("sigmoid"),
                        reshape({2, 3}), spec("tanh")});
  ASSERT_EQ(l.size(), 5u);
  EXPECT_EQ(l[0].kind, LayerKind::linear);
  EXPECT_EQ(l[0].act.kind, Act::relu);
  EXPECT_EQ(l[0].out, (Shape{8}));
  EXPECT_EQ(l[1].kind, LayerKind::linear);
  EXPECT_EQ(l[1].act.kind, Act::leaky_relu);
  EXPECT_FLOAT_EQ(l[1].act.alpha, 0.2f);
  EXPECT_EQ(l[2].kind, LayerKind::activation);
  EXPECT_EQ(l[2].act.kind, Act::sigmoid);
  EXPECT_EQ(l[3].kind, LayerKind::view);
  EXPECT_EQ(l[4].kind, LayerKind::activation);
  EXPECT_EQ(l[4].act.kind, Act::tanh);
  EXPECT_EQ(l[4].out, (Shape{2, 3}));

  // Default slopes: leaky_relu 0.01, elu 1.
  l = plan_layers(
      "n", Shape{1, 8, 8},
      {conv("conv2d", 2, 3, 1, 1), spec("leaky_relu"), conv("deconv2d", 2, 3, 1, 1), spec("elu")});
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].act.kind, Act::leaky_relu);
  EXPECT_FLOAT_EQ(l[0].act.alpha, 0.01f);
  EXPECT_EQ(l[1].act.kind, Act::elu);
  EXPECT_FLOAT_EQ(l[1].act.alpha, 1.0f);
}

TEST(NetworkSpec, ParameterSlicesAndBias) {
  ReferenceBackend<float> be;
  LayerSpec nobias = conv("conv2d", 4, 3, 1, 1);
  nobias.bias = false;
  Network<float> n(be, "enc", Shape{2, 5, 5}, {nobias, spec("flatten"), spec("linear", 3)}, 2);
  const auto& s = n.params().slices();
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].name, "enc.0.weight");
  EXPECT_EQ(s[0].shape, (Shape{4, 2, 3, 3}));
  EXPECT_EQ(s[1].name, "enc.2.weight");
  EXPECT_EQ(s[1].shape, (Shape{3, 100}));
  EXPECT_EQ(s[2].name, "enc.2.bias");
  EXPECT_EQ(s[2].shape, (Shape{3}));
  EXPECT_EQ(n.params().size(), size_t(4 * 2 * 9 + 300 + 3));
  EXPECT_EQ(n.output_shape(), (Shape{3}));
  // 2 * (4*5*5 outputs * 2*9 taps) + 2 * 100 * 3
  EXPECT_DOUBLE_EQ(n.forward_flops_per_sample(), 2.0 * 100 * 18 + 2.0 * 300);
}

// ---------------------------------------------------------------- YAML layer lists

std::string yaml_error(const std::string& text) {
  return error_of<ConfigError>([&] { parse_layer_list(YAML::Load(text), "model.encoder"); });
}

TEST(LayerSpecYaml, ParsesAWellFormedList) {
  const auto specs = parse_layer_list(
      YAML::Load("[{type: conv2d, out: 32, kernel: 4, stride: 2, padding: 1}, relu, "
                 "{type: leaky_relu, alpha: 0.2}, flatten, {type: linear, out: 10, in: 6272, "
                 "bias: false}, {type: reshape, shape: [10, 1, 1]}, "
                 "{type: deconv2d, out: 3, kernel: 3, stride: 2, output_padding: 1}]"),
      "model.encoder");
  ASSERT_EQ(specs.size(), 7u);
  EXPECT_EQ(specs[0].type, "conv2d");
  EXPECT_EQ(specs[0].out, 32);
  EXPECT_EQ(specs[0].kernel, 4);
  EXPECT_EQ(specs[0].stride, 2);
  EXPECT_EQ(specs[0].padding, 1);
  EXPECT_EQ(specs[1].type, "relu");
  EXPECT_FLOAT_EQ(specs[2].alpha, 0.2f);
  EXPECT_EQ(specs[3].type, "flatten");
  EXPECT_EQ(specs[4].in, 6272);
  EXPECT_FALSE(specs[4].bias);
  EXPECT_TRUE(specs[0].bias);
  EXPECT_EQ(specs[5].shape, (std::vector<int64_t>{10, 1, 1}));
  EXPECT_EQ(specs[6].output_padding, 1);
  EXPECT_EQ(specs[6].stride, 2);
}

TEST(LayerSpecYaml, ParsesAMask) {
  const auto specs = parse_layer_list(
      YAML::Load("[{type: conv2d, out: 16, kernel: 7, padding: 3, mask: A}]"), "model.decoder");
  ASSERT_EQ(specs.size(), 1u);
  EXPECT_EQ(specs[0].mask, "A");
}

TEST(LayerSpecYaml, UnknownKey) {
  const std::string m = yaml_error("[{type: linear, out: 8}, relu, {type: linear, outt: 4}]");
  EXPECT_TRUE(Contains(m, "model.encoder[2]"));
  EXPECT_TRUE(Contains(m, "outt"));
}

TEST(LayerSpecYaml, MissingType) {
  const std::string m = yaml_error("[{type: linear, out: 8}, relu, {out: 4}]");
  EXPECT_TRUE(Contains(m, "model.encoder[2]"));
  EXPECT_TRUE(Contains(m, "'type'"));
}

TEST(LayerSpecYaml, WrongValueType) {
  const std::string m = yaml_error("[{type: linear, out: 8}, relu, {type: linear, out: \"abc\"}]");
  EXPECT_TRUE(Contains(m, "model.encoder[2]"));
  EXPECT_TRUE(Contains(m, "out"));
  EXPECT_TRUE(Contains(m, "abc"));
  EXPECT_TRUE(Contains(m, "integer"));
  const std::string b = yaml_error("[{type: linear, out: 8, bias: maybe}]");
  EXPECT_TRUE(Contains(b, "model.encoder[0]"));
  EXPECT_TRUE(Contains(b, "bias"));
  const std::string s = yaml_error("[{type: reshape, shape: 7x7}]");
  EXPECT_TRUE(Contains(s, "model.encoder[0]"));
  EXPECT_TRUE(Contains(s, "shape"));
}

TEST(LayerSpecYaml, NotASequence) {
  const std::string m = yaml_error("{type: linear, out: 8}");
  EXPECT_TRUE(Contains(m, "model.encoder"));
  EXPECT_TRUE(Contains(m, "list"));
  const std::string s = yaml_error("linear");
  EXPECT_TRUE(Contains(s, "model.encoder"));
  // An element that is neither a name nor a map.
  const std::string e = yaml_error("[relu, [linear, 8]]");
  EXPECT_TRUE(Contains(e, "model.encoder[1]"));
  // A missing node.
  EXPECT_TRUE(
      Contains(error_of<ConfigError>([] { parse_layer_list(YAML::Node(), "model.decoder"); }),
               "model.decoder"));
}

}  // namespace
}  // namespace distvae

namespace distvae {
namespace {

TEST(NetworkSpec, KeysThatDoNotApplyAreErrors) {
  LayerSpec lin = spec("linear", 4);
  lin.kernel = 3;
  std::string m = plan_error(Shape{10}, {lin});
  EXPECT_TRUE(Contains(m, "layer 0"));
  EXPECT_TRUE(Contains(m, "'kernel' does not apply to linear"));
  LayerSpec relu = spec("relu");
  relu.alpha = 0.2f;
  m = plan_error(Shape{10}, {spec("linear", 4), relu});
  EXPECT_TRUE(Contains(m, "layer 1"));
  EXPECT_TRUE(Contains(m, "'alpha' does not apply to relu"));
}

TEST(NetworkSpec, NegativeAlphaIsAnErrorNotTheDefault) {
  LayerSpec leaky = spec("leaky_relu");
  leaky.alpha = -0.3f;
  const std::string m = plan_error(Shape{10}, {spec("linear", 4), leaky});
  EXPECT_TRUE(Contains(m, "'alpha' must be > 0"));
}

TEST(NetworkSpec, BatchNormKeysAndShapes) {
  LayerSpec bn = spec("batchnorm");
  bn.momentum = 1.5;
  std::string m = plan_error(Shape{3, 4, 4}, {bn});
  EXPECT_TRUE(Contains(m, "layer 0 (batchnorm)"));
  EXPECT_TRUE(Contains(m, "'momentum' must be in [0, 1]"));
  bn = spec("batchnorm");
  bn.eps = 0;
  EXPECT_TRUE(Contains(plan_error(Shape{3, 4, 4}, {bn}), "'eps' must be > 0"));
  bn = spec("batchnorm");
  bn.bias = false;
  EXPECT_TRUE(Contains(plan_error(Shape{3, 4, 4}, {bn}), "'bias' does not apply to batchnorm"));
  LayerSpec lin = spec("linear", 4);
  lin.momentum = 0.1;
  EXPECT_TRUE(Contains(plan_error(Shape{10}, {lin}), "'momentum' does not apply to linear"));
  EXPECT_TRUE(Contains(plan_error(Shape{12}, {reshape({3, 4}), spec("batchnorm")}),
                       "batchnorm normalizes features (F) or channels (C, H, W)"));
  // Channels of H*W values, or features of one value; an activation after it is fused.
  const auto layers = plan_layers("g", Shape{3, 4, 5}, {spec("batchnorm"), spec("relu")});
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_EQ(layers[0].C, 3);
  EXPECT_EQ(layers[0].S, 20);
  EXPECT_EQ(layers[0].act.kind, Act::relu);
  const auto flat = plan_layers("g", Shape{7}, {spec("batchnorm")});
  EXPECT_EQ(flat[0].C, 7);
  EXPECT_EQ(flat[0].S, 1);
}

TEST(LayerSpecYaml, BatchNormKeys) {
  const auto specs = parse_layer_list(
      YAML::Load("[{type: batchnorm, momentum: 0.05, eps: 1.0e-3}, batchnorm]"), "model.encoder");
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_DOUBLE_EQ(specs[0].momentum, 0.05);
  EXPECT_DOUBLE_EQ(specs[0].eps, 1e-3);
  EXPECT_TRUE(std::isnan(specs[1].momentum));
  EXPECT_TRUE(Contains(yaml_error("[{type: batchnorm, momentum: fast}]"),
                       "model.encoder[0].momentum: cannot read 'fast' as a number"));
}

}  // namespace
}  // namespace distvae
