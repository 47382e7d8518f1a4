// The typed run configuration: every YAML key is a field with a default, a range and a line of
// documentation in the key table (config_keys), from which docs/config.md is checked.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/layers.h"
#include "launch/config/config_error.h"

namespace YAML {
class Node;
}

namespace distvae {

struct ModelConfig {
  std::string family = "vae";  // vae | implicit_prior_vae | aae | gan
  int latent = 32;
  std::vector<LayerSpec> encoder;  // trunk; the model appends linear(2 * latent) for (mu, logvar)
  std::vector<LayerSpec> decoder;  // must end at the image's (C, H, W) or C*H*W values
  std::vector<LayerSpec> discriminator;  // T(z) (implicit_prior_vae, aae) or T(x) (gan), 1 output
  double discriminator_cap = 0.0;        // implicit_prior_vae: T's smooth upper bound (0: none)
  std::vector<LayerSpec> generator;      // gan: z -> the image's values in [0, 1]
  std::string likelihood = "bernoulli";
  std::string gaussian_variance = "fixed";
  double gaussian_logvar = 0.0;
  double logvar_floor = -6.0;
};

struct ObjectiveConfig {
  std::string estimator = "B";
  int samples = 1;
  double beta = 1.0;
  double warmup_epochs = 0.0;
  double free_bits = 0.0;
  int n_disc = 1;               // discriminator steps per model step
  double proximal = 0.0;        // gan: lambda of the proximal term
  double instance_noise = 0.0;  // gan: sigma0 of the annealed instance noise
};

struct DataConfig {
  std::string train, validation, test;  // HDF5 files or glob patterns
  std::string binarize = "dynamic";
  std::string preload = "auto";
  int64_t max_images = 0;  // use only the first N training images (0: all)
  int shuffle_window = 0;  // chunks shuffled together per rank (0: all if preloaded, else 4)
  int prefetch_batches = 3;
  int loader_threads = 1;  // threads decompressing chunks per rank (the loader's own included)
  std::string decode_on = "auto";  // auto / loader / compute: which threads decompress and decode
};

struct OptimConfig {
  std::string kind = "adam";
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0, momentum = 0.0;
  std::string schedule = "constant";
  double lr_min = 0.0;
  double grad_clip = 0.0;
};

struct TrainConfig {
  int batch = 128;
  int epochs = 10;
  int64_t seed = 1;
  std::string backend = "dnnl";
  int threads = 0;
  int log_every = 100;
  int checkpoint_every = 1;  // epochs
  int keep_checkpoints = 3;
  int sample_grid = 64;
  int bucket_kb = 1024;            // gradient all-reduce bucket size
  std::string overlap = "auto";    // start bucket all-reduces during backward: true|false|auto
  bool shm_allreduce = true;       // gradients in node shared memory, reduced without MPI copies
  bool requeue = false;            // on preemption under SLURM, scontrol requeue the job
  double hang_timeout = 300;       // seconds without progress before the job is aborted
  int checkpoint_every_steps = 0;  // also checkpoint every N steps (0: off)
  double checkpoint_minutes = 0;   // also checkpoint every M minutes of wall clock (0: off)
  std::string on_nonfinite = "stop";
};

struct EvalConfig {
  int iw_samples = 1000;
  int iw_batch = 100;
  int64_t max_images = 0;
  int64_t binarize_seed = 12345;
};

struct Config {
  ModelConfig model;
  ObjectiveConfig objective;
  DataConfig data;
  OptimConfig optim;
  TrainConfig train;
  EvalConfig eval;
  OptimConfig disc_optim;  // the discriminator's own optimizer
};

// Families with a discriminator network, and with a VAE (encoder, decoder).
bool has_discriminator(const ModelConfig& m);
bool is_vae_family(const ModelConfig& m);

// One documented key: its path, type, default, allowed range and meaning.
struct KeyInfo {
  std::string path, type, default_value, range, doc;
  std::function<void(Config&, const YAML::Node&)> set;  // throws ConfigError
  std::function<std::string(const Config&)> show;
};
const std::vector<KeyInfo>& config_keys();

// Loads a YAML file and applies --set overrides ("a.b=value"); validates every key, type and
// range and the cross-key rules. Errors name the file or override and the key path.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides = {});
// The key table as Markdown rows: | key | type | default | range | meaning |.
std::string config_keys_markdown();
// The resolved config with every default filled in, as YAML.
std::string dump_config(const Config& c);

}  // namespace distvae
