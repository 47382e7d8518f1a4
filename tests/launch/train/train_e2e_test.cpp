// End to end, in process: Fashion-MNIST is converted once, a tiny VAE is trained for 3 epochs
// uninterrupted and as 2 + 1 epochs with a resume; the two final checkpoints must be bitwise
// equal. Also checks metrics.jsonl, the sample / reconstruction grids and that the model learns.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "dist/communicator.h"
#include "io/convert/convert_idx.h"
#include "io/hdf5/checkpoint.h"
#include "io/image/png.h"
#include "launch/config/config.h"
#include "launch/train/run_dir.h"
#include "launch/train/trainer.h"

namespace distvae {
namespace {

namespace fs = std::filesystem;

const char* const kFmnistDir = "/usr/share/datasets/fashion-mnist";

// One line of metrics.jsonl: a flat object of numbers (a null, which must be noted in the
// record's "nonfinite" note, kept as NaN).
using Record = std::map<std::string, double>;

// Reads every line of a metrics file with nlohmann's strict parser; adds a failure for a line
// that is not a JSON object of numbers and nulls, or a null without its note.
std::vector<Record> read_metrics(const std::string& path) {
  std::vector<Record> out;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path << ": cannot open";
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      ADD_FAILURE() << path << ":" << n << ": not a JSON object: " << line;
      continue;
    }
    Record r;
    for (const auto& [key, v] : j.items()) {
      if (key == "nonfinite") continue;
      if (key == "run_id") {  // the run's id: 16 hex digits, in every record
        EXPECT_TRUE(v.is_string() && v.get<std::string>().size() == 16) << path << ":" << n;
        continue;
      }
      if (v.is_null()) {
        EXPECT_TRUE(j.contains("nonfinite") && j["nonfinite"].contains(key))
            << path << ":" << n << ": " << key << " is null without a note: " << line;
        r[key] = std::nan("");
      } else if (v.is_number()) {
        r[key] = v.get<double>();
      } else {
        ADD_FAILURE() << path << ":" << n << ": " << key << " is not a number: " << line;
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

class TrainE2E : public ::testing::Test {
 protected:
  static inline std::string tmp_, skip_reason_, setup_error_;
  static inline std::string run_a_, run_b_;

  static std::vector<std::string> overrides() {
    return {"data.train=" + tmp_ + "/data/fmnist-train-*.h5",
            "data.validation=" + tmp_ + "/data/fmnist-validation-*.h5",
            "data.test=" + tmp_ + "/data/fmnist-test-*.h5",
            "data.max_images=1024",
            "train.epochs=3",
            "train.threads=1",
            "train.keep_checkpoints=5"};
  }

  static Config config() {
    return load_config(DISTVAE_SOURCE_DIR "/configs/fmnist_vae_tiny.yaml", overrides());
  }

  static void SetUpTestSuite() {
    if (!fs::exists(fs::path(kFmnistDir) / "train-images-idx3-ubyte.gz")) {
      skip_reason_ = "SKIP [data]: " + std::string(kFmnistDir) +
                     "/train-images-idx3-ubyte.gz not found: Fashion-MNIST is not installed";
      return;
    }
    tmp_ = std::string(DISTVAE_BINARY_DIR) + "/test-tmp/train_e2e-" + std::to_string(::getpid());
    fs::remove_all(tmp_);
    fs::create_directories(tmp_ + "/data");
    try {
      ConvertIdxOptions o;
      o.images_path = std::string(kFmnistDir) + "/train-images-idx3-ubyte.gz";
      o.labels_path = std::string(kFmnistDir) + "/train-labels-idx1-ubyte.gz";
      o.out_dir = tmp_ + "/data";
      o.prefix = "fmnist";
      o.val = 10000;
      o.overwrite = true;
      convert_idx(o);

      const Config c = config();
      auto comm = make_local_communicator();
      TrainOptions a;
      a.run_dir = run_a_ = tmp_ + "/run-a";
      a.quiet = true;
      if (train(c, a, *comm) != 0) throw std::runtime_error("uninterrupted run returned non-zero");

      TrainOptions b;
      b.run_dir = run_b_ = tmp_ + "/run-b";
      b.quiet = true;
      b.stop_after_epochs = 2;
      if (train(c, b, *comm) != 0) throw std::runtime_error("first half returned non-zero");
      b.stop_after_epochs = 0;
      b.resume = true;
      if (train(c, b, *comm) != 0) throw std::runtime_error("resumed run returned non-zero");
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }

  static void TearDownTestSuite() {
    const auto* suite = ::testing::UnitTest::GetInstance()->current_test_suite();
    if (!tmp_.empty() && (!suite || suite->Passed())) {  // keep the files of a failed run
      std::error_code ec;
      fs::remove_all(tmp_, ec);
    }
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(setup_error_.empty()) << "setting up the runs failed: " << setup_error_;
  }
};

TEST_F(TrainE2E, ResumeEqualsUninterruptedBitwise) {
  const auto ca = list_checkpoints(run_a_), cb = list_checkpoints(run_b_);
  ASSERT_FALSE(ca.empty()) << run_a_ << ": no checkpoints";
  ASSERT_FALSE(cb.empty()) << run_b_ << ": no checkpoints";
  // The newest checkpoint of each must be epoch 3.
  EXPECT_EQ(fs::path(ca.front()).filename(), "ckpt-000003.h5");
  EXPECT_EQ(fs::path(cb.front()).filename(), "ckpt-000003.h5");
  // Run B stopped after 2 epochs: it must have written the epoch-2 checkpoint.
  EXPECT_TRUE(fs::exists(checkpoint_path(run_b_, 2)));

  const Checkpoint a = read_checkpoint(ca.front());
  const Checkpoint b = read_checkpoint(cb.front());
  for (const char* name : {"encoder.values", "decoder.values", "encoder.opt_m", "encoder.opt_v",
                           "decoder.opt_m", "decoder.opt_v"}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(a.arrays.count(name)) << ca.front() << " lacks " << name;
    ASSERT_TRUE(b.arrays.count(name)) << cb.front() << " lacks " << name;
    const auto& va = a.arrays.at(name);
    const auto& vb = b.arrays.at(name);
    ASSERT_EQ(va.size(), vb.size());
    ASSERT_GT(va.size(), 0u);
    size_t first_diff = va.size();
    for (size_t i = 0; i < va.size(); ++i)
      if (std::memcmp(&va[i], &vb[i], sizeof(float)) != 0) {
        first_diff = i;
        break;
      }
    EXPECT_EQ(first_diff, va.size()) << "first difference at " << first_diff << ": "
                                     << va[first_diff] << " vs " << vb[first_diff];
  }
  // Every array of one is in the other, and all are equal.
  EXPECT_EQ(a.arrays.size(), b.arrays.size());
  for (const auto& [name, va] : a.arrays) {
    auto it = b.arrays.find(name);
    ASSERT_NE(it, b.arrays.end()) << name;
    ASSERT_EQ(va.size(), it->second.size()) << name;
    EXPECT_EQ(std::memcmp(va.data(), it->second.data(), va.size() * sizeof(float)), 0) << name;
  }
  for (const char* key : {"step", "epoch", "encoder.opt_step", "decoder.opt_step"}) {
    ASSERT_TRUE(a.ints.count(key)) << key;
    ASSERT_TRUE(b.ints.count(key)) << key;
    EXPECT_EQ(a.ints.at(key), b.ints.at(key)) << key;
  }
  EXPECT_EQ(a.ints.at("epoch"), 3);
  // 1024 images / batch 64 = 16 steps per epoch.
  const Config c = config();
  EXPECT_EQ(a.ints.at("step"), 3 * (1024 / c.train.batch));
  EXPECT_EQ(a.ints.at("encoder.opt_step"), a.ints.at("step"));
  EXPECT_EQ(a.strings.at("config"), b.strings.at("config"));

  // The third epoch changed the parameters (so equality above is not vacuous).
  const Checkpoint b2 = read_checkpoint(checkpoint_path(run_b_, 2));
  EXPECT_EQ(b2.ints.at("epoch"), 2);
  const auto& v2 = b2.arrays.at("decoder.values");
  const auto& v3 = b.arrays.at("decoder.values");
  ASSERT_EQ(v2.size(), v3.size());
  EXPECT_NE(std::memcmp(v2.data(), v3.data(), v2.size() * sizeof(float)), 0);
}

TEST_F(TrainE2E, MetricsJsonl) {
  for (const std::string& dir : {run_a_, run_b_}) {
    SCOPED_TRACE(dir);
    const auto records = read_metrics(dir + "/metrics.jsonl");
    ASSERT_FALSE(records.empty());
    int step_lines = 0;
    std::vector<double> val_epochs;
    double last_step = 0;
    for (const Record& r : records) {
      if (r.count("val_elbo")) {
        ASSERT_TRUE(r.count("epoch"));
        EXPECT_TRUE(std::isfinite(r.at("val_elbo")));
        EXPECT_LT(r.at("val_elbo"), 0.0);
        val_epochs.push_back(r.at("epoch"));
        continue;
      }
      ++step_lines;
      for (const char* k :
           {"step", "epoch", "elbo", "log_px_given_z", "kl", "beta", "lr", "images_per_s"}) {
        ASSERT_TRUE(r.count(k)) << "a step line lacks '" << k << "'";
        EXPECT_TRUE(std::isfinite(r.at(k))) << k;
      }
      EXPECT_GT(r.at("step"), last_step) << "steps must increase";
      last_step = r.at("step");
      EXPECT_NEAR(r.at("elbo"), r.at("log_px_given_z") - r.at("kl"), 1e-3 * std::abs(r.at("elbo")))
          << "elbo = log p(x|z) - kl (beta " << r.at("beta") << ")";
      EXPECT_GE(r.at("kl"), 0.0);
      EXPECT_GT(r.at("images_per_s"), 0.0);
      EXPECT_GE(r.at("beta"), 0.0);
      EXPECT_LE(r.at("beta"), 1.0);
    }
    EXPECT_GE(step_lines, 3);  // at least one per epoch
    EXPECT_EQ(last_step, 3 * (1024 / 64));
    EXPECT_EQ(val_epochs, (std::vector<double>{1, 2, 3}));
  }
}

TEST_F(TrainE2E, SampleAndReconstructionGrids) {
  const Config c = config();
  const int H = 28, W = 28, pad = 2;
  // As in trainer.cpp write_grids.
  const int n = std::min(c.train.sample_grid, c.train.batch);
  const int cols = int(std::ceil(std::sqrt(double(n))));
  auto grid_size = [&](int count) {
    const int shown_cols = std::min(cols, count);
    const int rows = (count + cols - 1) / cols;
    return std::pair{shown_cols * W + (shown_cols + 1) * pad, rows * H + (rows + 1) * pad};
  };
  const int m = n / 2;  // reconstructions (the validation set has more than n / 2 images)
  const int pair_rows = (m + cols - 1) / cols;
  const auto [sw, sh] = grid_size(n);
  const auto [rw, rh] = grid_size(2 * pair_rows * cols);

  for (const std::string& dir : {run_a_, run_b_}) {
    for (const auto& [file, w, h] : {std::tuple{std::string("samples.png"), sw, sh},
                                     std::tuple{std::string("recon.png"), rw, rh}}) {
      SCOPED_TRACE(dir + "/" + file);
      const std::string path = dir + "/" + file;
      ASSERT_TRUE(fs::exists(path));
      const Image img = read_png(path);
      EXPECT_EQ(img.width, w);
      EXPECT_EQ(img.height, h);
      EXPECT_EQ(img.channels, 1);
      ASSERT_EQ(img.pixels.size(), size_t(img.width) * size_t(img.height) * size_t(img.channels));
      double sum = 0, sum2 = 0;
      for (uint8_t p : img.pixels) sum += p, sum2 += double(p) * p;
      const double N = double(img.pixels.size());
      const double var = sum2 / N - (sum / N) * (sum / N);
      EXPECT_GT(var, 1.0) << "the grid is blank";
    }
  }
}

TEST_F(TrainE2E, ValidationElboImproves) {
  for (const std::string& dir : {run_a_, run_b_}) {
    SCOPED_TRACE(dir);
    std::vector<double> val;
    for (const Record& r : read_metrics(dir + "/metrics.jsonl"))
      if (r.count("val_elbo")) val.push_back(r.at("val_elbo"));
    ASSERT_EQ(val.size(), 3u);
    EXPECT_GT(val.back(), val.front()) << "validation ELBO did not improve from epoch 1 to 3";
  }
}

}  // namespace
}  // namespace distvae
