// Config loading: every key documented, unknown keys with suggestions, types, ranges, --set.
#include "launch/config/config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace distvae {
namespace {

const char* kMinimal = R"(
model:
  encoder: [{type: linear, out: 8}, relu]
  decoder: [{type: linear, out: 4}]
data:
  train: x.h5
)";

std::string error_of(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  try {
    parse_config(yaml, "test.yaml", sets);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, EveryKeyIsDocumented) {
  std::ifstream f(DISTVAE_SOURCE_DIR "/docs/config.md");
  ASSERT_TRUE(f) << "docs/config.md missing";
  std::stringstream s;
  s << f.rdbuf();
  const std::string doc = s.str();
  ASSERT_GT(config_keys().size(), 30u);
  for (const KeyInfo& k : config_keys())
    EXPECT_NE(doc.find("`" + k.path + "`"), std::string::npos)
        << k.path << " is missing from docs/config.md (regenerate with distvae config keys)";
}

TEST(Config, DefaultsAndValues) {
  const Config c = parse_config(kMinimal, "t", {"train.batch=7", "optim.lr=0.5"});
  EXPECT_EQ(c.train.batch, 7);
  EXPECT_DOUBLE_EQ(c.optim.lr, 0.5);
  EXPECT_EQ(c.model.latent, 32);
  ASSERT_EQ(c.model.encoder.size(), 2u);
  EXPECT_EQ(c.model.encoder[1].type, "relu");
}

TEST(Config, UnknownKeySuggestsNearest) {
  const std::string e = error_of(std::string(kMinimal) + "train:\n  bach: 3\n");
  EXPECT_NE(e.find("unknown key 'train.bach'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'train.batch'"), std::string::npos) << e;
}

TEST(Config, WrongTypeAndRangeNameTheKey) {
  EXPECT_NE(error_of(kMinimal, {"train.batch=abc"}).find("train.batch: cannot read 'abc'"),
            std::string::npos);
  const std::string r = error_of(kMinimal, {"train.batch=0"});
  EXPECT_NE(r.find("--set train.batch=0"), std::string::npos) << r;
  EXPECT_NE(r.find("out of range"), std::string::npos) << r;
  EXPECT_NE(error_of(kMinimal, {"model.likelihood=poisson"}).find("not one of"), std::string::npos);
  EXPECT_NE(error_of(kMinimal, {"nope.key=1"}).find("unknown key 'nope.key'"), std::string::npos);
}

// A layer type that is not a plain name (here with a NUL byte, which the YAML emitter cannot
// write back) is rejected with the layer's path; found by fuzz_config.
TEST(Config, LayerTypeMustBeAPlainName) {
  std::string with_nul = kMinimal;  // YAML's escape \x00 puts a NUL byte into the type
  with_nul.replace(with_nul.find("relu"), 4, R"("re\x00lu")");
  const std::string e = error_of(with_nul);
  EXPECT_NE(e.find("model.encoder[1].type: not a layer type name"), std::string::npos) << e;
  std::string with_space = kMinimal;
  with_space.replace(with_space.find("linear"), 6, "lin ear");
  const std::string m = error_of(with_space);
  EXPECT_NE(m.find("model.encoder[0].type: not a layer type name"), std::string::npos) << m;
  EXPECT_EQ(error_of(kMinimal), "");
}

TEST(Config, CrossKeyRules) {
  EXPECT_NE(
      error_of(kMinimal, {"objective.free_bits=0.5", "objective.estimator=A"}).find("free_bits"),
      std::string::npos);
  EXPECT_NE(error_of("data: {train: x.h5}\n").find("model.encoder: missing"), std::string::npos);
}

TEST(Config, SyntaxErrorNamesLine) {
  const std::string e = error_of("model:\n  latent: [1, 2\n");
  EXPECT_NE(e.find("line"), std::string::npos) << e;
}

TEST(Config, DumpRoundTrips) {
  const Config c = parse_config(kMinimal, "t", {"train.epochs=3", "model.latent=5"});
  const Config d = parse_config(dump_config(c), "dump");
  EXPECT_EQ(dump_config(c), dump_config(d));
  EXPECT_EQ(d.train.epochs, 3);
  EXPECT_EQ(d.model.latent, 5);
}

// A checkpoint rebuilds its networks from the dumped config: every layer key must survive it
// (a lost PixelCNN mask would silently give another model).
TEST(Config, DumpKeepsEveryLayerKey) {
  const Config c = parse_config(R"(
model:
  encoder:
    - {type: reshape, shape: [1, 4, 4]}
    - {type: conv2d, out: 4, in: 1, kernel: 3, padding: 1, mask: A, bias: false}
    - {type: batchnorm, momentum: 0.05, eps: 0.001}
    - {type: leaky_relu, alpha: 0.2}
    - {type: conv2d, out: 2, kernel: 3, padding: 1, mask: B}
    - flatten
  decoder: [{type: linear, out: 8}, {type: reshape, shape: [2, 2, 2]},
            {type: deconv2d, out: 1, kernel: 3, stride: 2, padding: 1, output_padding: 1},
            autoregressive, {type: conv2d, out: 1, kernel: 3, padding: 1, mask: A}]
data:
  train: x.h5
)",
                                "t");
  const Config d = parse_config(dump_config(c), "dump");
  for (const auto net : {&ModelConfig::encoder, &ModelConfig::decoder}) {
    const std::vector<LayerSpec>&a = c.model.*net, &b = d.model.*net;
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      SCOPED_TRACE("layer " + std::to_string(i) + " " + a[i].type);
      EXPECT_EQ(a[i].type, b[i].type);
      EXPECT_EQ(a[i].out, b[i].out);
      EXPECT_EQ(a[i].in, b[i].in);
      EXPECT_EQ(a[i].kernel, b[i].kernel);
      EXPECT_EQ(a[i].stride, b[i].stride);
      EXPECT_EQ(a[i].padding, b[i].padding);
      EXPECT_EQ(a[i].output_padding, b[i].output_padding);
      EXPECT_EQ(a[i].shape, b[i].shape);
      EXPECT_EQ(a[i].bias, b[i].bias);
      EXPECT_EQ(a[i].mask, b[i].mask);
      for (auto [x, y] : {std::pair{double(a[i].alpha), double(b[i].alpha)},
                          {a[i].momentum, b[i].momentum},
                          {a[i].eps, b[i].eps}})
        EXPECT_TRUE(x == y || (std::isnan(x) && std::isnan(y))) << x << " vs " << y;
    }
  }
  EXPECT_EQ(d.model.encoder[1].mask, "A");
  EXPECT_EQ(d.model.encoder[4].mask, "B");
}

}  // namespace
}  // namespace distvae

namespace distvae {
namespace {

const char* kGan = R"(
model:
  family: gan
  latent: 8
  generator: [{type: linear, out: 4}, sigmoid]
  discriminator: [{type: linear, out: 1}]
data:
  train: x.h5
  binarize: none
)";

// An autoregressive decoder models binary pixels: grey ones are refused, naming the key.
TEST(Config, AutoregressiveDecoderNeedsBinarizedImages) {
  const char* pixel = R"(
model:
  encoder: [{type: linear, out: 8}]
  decoder: [{type: linear, out: 32}, {type: reshape, shape: [2, 4, 4]}, autoregressive,
            {type: conv2d, out: 1, kernel: 3, padding: 1, mask: A}]
data:
  train: x.h5
  binarize: dynamic
)";
  EXPECT_EQ(error_of(pixel), "");
  const std::string e = error_of(pixel, {"data.binarize=none"});
  EXPECT_NE(e.find("data.binarize: an autoregressive decoder models binary pixels"),
            std::string::npos)
      << e;
}

// The adversarial families' configuration errors name the key and what to do.
TEST(Config, AdversarialFamilyRules) {
  EXPECT_EQ(error_of(kGan), "");
  auto has = [](const std::string& err, const std::string& what) {
    return err.find(what) != std::string::npos;
  };
  EXPECT_TRUE(has(error_of(kGan, {"objective.n_disc=0"}), "objective.n_disc: 0 is out of range"));
  EXPECT_TRUE(has(error_of(std::string(kGan).replace(std::string(kGan).find("  generator"), 0,
                                                     "  encoder: [{type: linear, out: 8}]\n")),
                  "model.encoder: a gan has no encoder"));
  EXPECT_TRUE(has(error_of(kGan, {"data.binarize=dynamic"}), "data.binarize"));
  EXPECT_TRUE(
      has(error_of(kMinimal, {"model.family=implicit_prior_vae"}), "model.discriminator: missing"));
  EXPECT_TRUE(has(error_of(kMinimal, {"objective.proximal=0.1"}), "gan only"));
  EXPECT_EQ(error_of(kGan, {"objective.instance_noise=0.3"}), "");
  EXPECT_TRUE(has(error_of(kMinimal, {"objective.instance_noise=0.3"}),
                  "objective.instance_noise: applies to model.family: gan only"));
  EXPECT_TRUE(has(error_of(kGan, {"objective.instance_noise=-0.1"}),
                  "objective.instance_noise: -0.1 is out of range"));
  const std::string with_disc = std::string(kMinimal).replace(
      std::string(kMinimal).find("data:"), 0, "  discriminator: [{type: linear, out: 1}]\n");
  EXPECT_EQ(error_of(with_disc, {"model.family=aae"}), "");
  EXPECT_TRUE(
      has(error_of(with_disc, {"model.family=aae", "objective.estimator=A"}), "aae needs B"));
  EXPECT_TRUE(has(error_of(with_disc), "model.family: vae has no discriminator"));
  EXPECT_EQ(error_of(with_disc, {"model.family=implicit_prior_vae", "model.discriminator_cap=5"}),
            "");
  EXPECT_TRUE(has(error_of(with_disc, {"model.family=aae", "model.discriminator_cap=5"}),
                  "model.discriminator_cap: applies to model.family: implicit_prior_vae only"));
  EXPECT_TRUE(
      has(error_of(with_disc, {"model.family=implicit_prior_vae", "model.discriminator_cap=-1"}),
          "model.discriminator_cap: -1 is out of range"));
}

}  // namespace
}  // namespace distvae
