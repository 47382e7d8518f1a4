// distvae eval's eval.json, for a VAE, an implicit prior and a GAN briefly trained on synthetic
// shards: valid JSON (nlohmann's strict parser), the figures under their documented keys, the
// sample-quality entries nested per prior, and a non-finite figure written as null with a note.
// The validation images are all of class 0 and the training images never are, so every
// generated image's nearest training image has a class the validation set lacks: the class KL
// is +inf by construction, which JSON must carry as null and "nonfinite": {"class_kl": "inf"}.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "io/hdf5/checkpoint.h"
#include "io/hdf5/shard_writer.h"
#include "launch/config/config.h"
#include "launch/eval/evaluate.h"
#include "launch/train/run_dir.h"
#include "launch/train/trainer.h"
#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

constexpr int kSide = 28, kPixels = kSide * kSide, kClasses = 10;

// Images of a class are a bright band at a class-dependent row; labels from label(g).
void write_shard(const std::string& path, const std::string& split, int64_t n,
                 int (*label)(int64_t)) {
  ShardWriterOptions o;
  o.path = path;
  o.height = kSide, o.width = kSide, o.channels = 1;
  o.chunk_images = 32;
  o.labels = LabelType::uint8;
  o.split = split;
  std::vector<uint8_t> px(size_t(n) * kPixels, 0), labels(static_cast<size_t>(n));
  for (int64_t g = 0; g < n; ++g) {
    const int c = label(g);
    labels[size_t(g)] = uint8_t(c);
    for (int y = 2 * c + 2; y < 2 * c + 8; ++y)
      for (int x = 0; x < kSide; ++x)
        px[size_t(g * kPixels + y * kSide + x)] = uint8_t(200 + g % 50);
  }
  ShardWriter w(o);
  w.append(px.data(), n, labels.data());
  w.finish();
}

class EvalJson : public ::testing::Test {
 protected:
  static inline testing::TempDir* dir_ = nullptr;

  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    write_shard(*dir_ / "syn-train-0.h5", "train", 128, [](int64_t g) { return int(1 + g % 9); });
    write_shard(*dir_ / "syn-validation-0.h5", "validation", 64, [](int64_t) { return 0; });
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  // Trains the config one epoch (2 steps) and evaluates its checkpoint; returns eval.json.
  static nlohmann::json train_and_evaluate(const std::string& config, const std::string& run) {
    const Config c =
        load_config(std::string(DISTVAE_SOURCE_DIR) + "/configs/" + config,
                    {"data.train=" + (*dir_ / "syn-train-*.h5"),
                     "data.validation=" + (*dir_ / "syn-validation-*.h5"), "data.max_images=0",
                     "train.epochs=1", "train.batch=64", "train.threads=1", "train.sample_grid=4"});
    auto comm = make_local_communicator();
    TrainOptions t;
    t.run_dir = *dir_ / run;
    t.quiet = true;
    EXPECT_EQ(train(c, t, *comm), 0);
    EvalOptions o;
    o.checkpoint = list_checkpoints(t.run_dir).front();
    o.data = *dir_ / "syn-validation-*.h5";
    o.max_images = 48;
    o.iw_samples = run == "gan" ? 0 : 3;  // a gan has no likelihood: --iw there is an error
    o.quality_images = 32;
    o.out_json = t.run_dir + "/eval.json";
    EXPECT_EQ(evaluate(o, *comm), 0);
    std::ifstream f(o.out_json);
    EXPECT_TRUE(f.good()) << o.out_json;
    const nlohmann::json j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << o.out_json << " is not valid JSON";
    EXPECT_FALSE(std::filesystem::exists(o.out_json + ".tmp"));
    return j;
  }
};

// One quality entry: MMD present; all generated mass on classes the validation set lacks, so the
// class KL is +inf: null, with the note saying so.
void expect_quality_entry(const nlohmann::json& q, const std::string& prior) {
  SCOPED_TRACE(prior);
  EXPECT_EQ(q.value("prior", ""), prior);
  EXPECT_TRUE(q["mmd2"].is_number());
  EXPECT_GT(q["bandwidth"].get<double>(), 0.0);
  ASSERT_EQ(q["class_histogram"].size(), size_t(kClasses));
  double total = 0;
  for (const auto& h : q["class_histogram"]) total += h.get<double>();
  EXPECT_NEAR(total, 1.0, 1e-8);
  EXPECT_EQ(q["class_histogram"][0], 0) << "no training image has class 0";
  EXPECT_TRUE(q["class_kl"].is_null()) << q.dump();
  EXPECT_EQ(q["nonfinite"], nlohmann::json({{"class_kl", "inf"}})) << q.dump();
}

TEST_F(EvalJson, VaeFiguresAndQuality) {
  const nlohmann::json j = train_and_evaluate("fmnist_vae_tiny.yaml", "vae");
  EXPECT_EQ(j.value("family", ""), "vae");
  EXPECT_EQ(j.value("images", -1), 48);
  EXPECT_EQ(j.value("iw_samples", -1), 3);
  for (const char* k : {"elbo", "iw_log_likelihood", "kl_dim_min", "kl_dim_max",
                        "elbo_bits_per_dim", "iw_bits_per_dim"})
    EXPECT_TRUE(j.contains(k) && j[k].is_number()) << k;
  EXPECT_FALSE(j.contains("nonfinite")) << "the likelihood figures are finite";
  ASSERT_TRUE(j["active_units"].is_number_integer());
  EXPECT_GE(j["active_units"].get<int>(), 0);
  EXPECT_LE(j["active_units"].get<int>(), 8);
  // bits per dimension are -ELBO / (D ln 2), D = 28 * 28, to the 10 digits written.
  const double elbo = j["elbo"], bpd = j["elbo_bits_per_dim"];
  EXPECT_LT(elbo, 0.0);
  EXPECT_NEAR(bpd, -elbo / (kPixels * std::log(2.0)), 1e-9 * bpd);
  ASSERT_EQ(j["quality"].size(), 1u) << "a VAE samples from the standard prior";
  expect_quality_entry(j["quality"][0], "standard");
}

TEST_F(EvalJson, ImplicitPriorQualityPerPrior) {
  const nlohmann::json j = train_and_evaluate("fmnist_implicit_prior.yaml", "implicit");
  EXPECT_EQ(j.value("family", ""), "implicit_prior_vae");
  ASSERT_EQ(j["quality"].size(), 2u);
  expect_quality_entry(j["quality"][0], "standard");
  expect_quality_entry(j["quality"][1], "aggregate");
}

TEST_F(EvalJson, GanQualityOfTheGenerator) {
  const nlohmann::json j = train_and_evaluate("fmnist_gan_mlp.yaml", "gan");
  EXPECT_EQ(j.value("family", ""), "gan");
  EXPECT_FALSE(j.contains("elbo")) << "a GAN has no likelihood";
  ASSERT_EQ(j["quality"].size(), 1u);
  expect_quality_entry(j["quality"][0], "generator");
}

}  // namespace
}  // namespace distvae
