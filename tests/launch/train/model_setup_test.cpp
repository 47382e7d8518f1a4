// Building a model family from a config: the discriminator's input must be the latent code (or
// the image for a gan), and it must end in one output; errors name the network.
#include "launch/train/model_setup.h"

#include <gtest/gtest.h>

#include "tests/layer_spec.h"

namespace distvae {
namespace {

Config implicit_config() {
  Config c;
  c.model.family = "implicit_prior_vae";
  c.model.latent = 8;
  c.model.encoder = {layer("linear", 16), layer("relu")};
  c.model.decoder = {layer("linear", 36)};
  c.model.discriminator = {layer("linear", 16), layer("elu"), layer("linear", 1)};
  return c;
}

std::string build_error(const Config& c) {
  auto be = make_backend("reference");
  try {
    build_model(c, ImageGeom{6, 6, 1}, *be, 4);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(ModelSetup, DiscriminatorInputMustBeTheLatent) {
  Config c = implicit_config();
  EXPECT_EQ(build_error(c), "");
  c.model.discriminator[0].in = 784;  // written for images, not for the 8-dimensional code
  const std::string e = build_error(c);
  EXPECT_NE(e.find("discriminator"), std::string::npos) << e;
  EXPECT_NE(e.find("784"), std::string::npos) << e;
  EXPECT_NE(e.find("8"), std::string::npos) << e;
}

TEST(ModelSetup, DiscriminatorMustEndInOneOutput) {
  Config c = implicit_config();
  c.model.discriminator.back().out = 2;
  const std::string e = build_error(c);
  EXPECT_NE(e.find("discriminator: a discriminator must end with one output"), std::string::npos)
      << e;
}

TEST(ModelSetup, FamiliesBuildTheirNetworks) {
  auto be = make_backend("reference");
  Config c = implicit_config();
  Model m = build_model(c, ImageGeom{6, 6, 1}, *be, 4);
  ASSERT_TRUE(m.vae && m.latent_disc && !m.gan);
  EXPECT_EQ(m.vae->prior_kind(), PriorKind::implicit);
  EXPECT_EQ(m.trained().size(), 3u);
  c.model.family = "aae";
  Model a = build_model(c, ImageGeom{6, 6, 1}, *be, 4);
  EXPECT_EQ(a.vae->prior_kind(), PriorKind::adversarial);
  c.model.family = "gan";
  c.model.generator = {layer("linear", 36), layer("sigmoid")};
  Model g = build_model(c, ImageGeom{6, 6, 1}, *be, 4);
  ASSERT_TRUE(g.gan && !g.vae);
  EXPECT_EQ(checkpointed(g).size(), 3u);  // G, D and the snapshot G'
  EXPECT_EQ(g.gan->discriminator().input_size(), 36);
}

}  // namespace
}  // namespace distvae
