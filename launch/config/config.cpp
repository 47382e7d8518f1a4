// Config loading: the key table, type and range checks, "did you mean" for unknown keys,
// --set overrides, and the cross-key rules.
#include "launch/config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "launch/config/layer_spec_yaml.h"

namespace distvae {

namespace {

template <class V>
V read_as(const YAML::Node& n, const std::string& path, const char* what) {
  if (!n.IsScalar())
    throw ConfigError(path + ": expected " + what + ", got a " +
                      (n.IsSequence() ? "list"
                       : n.IsMap()    ? "map"
                                      : "null"));
  try {
    return n.as<V>();
  } catch (const YAML::Exception&) {
    throw ConfigError(path + ": cannot read '" + n.Scalar() + "' as " + what);
  }
}

template <class V>
std::string to_text(V v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

template <class V>
KeyInfo number(std::string path, std::function<V&(Config&)> ref, double lo, double hi,
               std::string doc) {
  Config defaults;
  KeyInfo k;
  k.path = path;
  k.type = std::is_integral_v<V> ? "int" : "float";
  k.default_value = to_text(ref(defaults));
  k.range = "[" + to_text(lo) + ", " + to_text(hi) + "]";
  k.doc = std::move(doc);
  k.set = [path, ref, lo, hi](Config& c, const YAML::Node& n) {
    V v = read_as<V>(n, path, std::is_integral_v<V> ? "an integer" : "a number");
    if (!(double(v) >= lo && double(v) <= hi))
      throw ConfigError(path + ": " + to_text(v) + " is out of range [" + to_text(lo) + ", " +
                        to_text(hi) + "]");
    ref(c) = v;
  };
  k.show = [ref](const Config& c) { return to_text(ref(const_cast<Config&>(c))); };
  return k;
}

KeyInfo choice(std::string path, std::function<std::string&(Config&)> ref,
               std::vector<std::string> allowed, std::string doc) {
  Config defaults;
  KeyInfo k;
  k.path = path;
  k.type = "string";
  k.default_value = ref(defaults);
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : " | ") + a;
  k.range = list;
  k.doc = std::move(doc);
  k.set = [path, ref, allowed, list](Config& c, const YAML::Node& n) {
    std::string v = read_as<std::string>(n, path, "a string");
    if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
      throw ConfigError(path + ": '" + v + "' is not one of " + list);
    ref(c) = v;
  };
  k.show = [ref](const Config& c) { return ref(const_cast<Config&>(c)); };
  return k;
}

// True when s is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const size_t n = b < 0x80           ? 1
                     : (b >> 5) == 0x6  ? 2
                     : (b >> 4) == 0xE  ? 3
                     : (b >> 3) == 0x1E ? 4
                                        : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? b : b & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c >> 6) != 0x2) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

KeyInfo text(std::string path, std::function<std::string&(Config&)> ref, std::string doc) {
  KeyInfo k;
  k.path = path;
  k.type = "string";
  k.default_value = "\"\"";
  k.range = "file path or glob";
  k.doc = std::move(doc);
  k.set = [path, ref](Config& c, const YAML::Node& n) {
    ref(c) = n.IsNull() ? "" : read_as<std::string>(n, path, "a string");  // empty: none
  };
  k.show = [ref](const Config& c) {  // quoted and escaped, so any path reads back unchanged
    YAML::Emitter e;
    e << YAML::DoubleQuoted << ref(const_cast<Config&>(c));
    return std::string(e.c_str());
  };
  return k;
}

KeyInfo flag(std::string path, std::function<bool&(Config&)> ref, std::string doc) {
  Config defaults;
  KeyInfo k;
  k.path = path;
  k.type = "bool";
  k.default_value = ref(defaults) ? "true" : "false";
  k.range = "true | false";
  k.doc = std::move(doc);
  k.set = [path, ref](Config& c, const YAML::Node& n) {
    ref(c) = read_as<bool>(n, path, "true or false");
  };
  k.show = [ref](const Config& c) { return ref(const_cast<Config&>(c)) ? "true" : "false"; };
  return k;
}

std::string layers_yaml(const std::vector<LayerSpec>& specs) {
  std::string s = "[";
  for (size_t i = 0; i < specs.size(); ++i) {
    const LayerSpec& l = specs[i];
    // The name as the emitter writes it inside a flow collection ("[name]"): quoted where a
    // flow context needs it (',', '}', ...), so the list parses back unchanged.
    YAML::Emitter type;
    type << YAML::Flow << YAML::BeginSeq << l.type << YAML::EndSeq;
    const std::string t = type.c_str();
    s += (i ? ", " : "") + std::string("{type: ") + t.substr(1, t.size() - 2);
    if (l.out) s += ", out: " + std::to_string(l.out);
    if (l.in) s += ", in: " + std::to_string(l.in);
    if (l.kernel) s += ", kernel: " + std::to_string(l.kernel);
    if (l.stride != 1) s += ", stride: " + std::to_string(l.stride);
    if (l.padding) s += ", padding: " + std::to_string(l.padding);
    if (l.output_padding) s += ", output_padding: " + std::to_string(l.output_padding);
    if (!std::isnan(l.alpha)) s += ", alpha: " + to_text(l.alpha);
    if (!std::isnan(l.momentum)) s += ", momentum: " + to_text(l.momentum);
    if (!std::isnan(l.eps)) s += ", eps: " + to_text(l.eps);
    if (!l.bias) s += ", bias: false";
    if (!l.mask.empty()) s += ", mask: " + l.mask;  // A or B: plain scalars
    if (!l.shape.empty()) {
      s += ", shape: [";
      for (size_t j = 0; j < l.shape.size(); ++j) s += (j ? ", " : "") + std::to_string(l.shape[j]);
      s += "]";
    }
    s += "}";
  }
  return s + "]";
}

KeyInfo layers(std::string path, std::function<std::vector<LayerSpec>&(Config&)> ref,
               std::string doc) {
  KeyInfo k;
  k.path = path;
  k.type = "layer list";
  k.default_value = "(required)";
  k.range = "see Layers";
  k.doc = std::move(doc);
  k.set = [path, ref](Config& c, const YAML::Node& n) { ref(c) = parse_layer_list(n, path); };
  k.show = [ref](const Config& c) { return layers_yaml(ref(const_cast<Config&>(c))); };
  return k;
}

// The upper bound of image counts and seeds.
constexpr double kBig = 1e12;

// The model's networks and likelihood.
void add_model_keys(std::vector<KeyInfo>& k) {
  k.push_back(choice(
      "model.family", [](Config& c) -> std::string& { return c.model.family; },
      {"vae", "implicit_prior_vae", "aae", "gan"},
      "vae: standard prior N(0, I); implicit_prior_vae: the aggregated posterior as prior, its "
      "KL through a density-ratio discriminator T(z); aae: adversarial autoencoder (T(z) in place "
      "of the KL); gan: generator G(z) against a discriminator D(x) = sigmoid(T(x))."));
  k.push_back(number<int>(
      "model.latent", [](Config& c) -> int& { return c.model.latent; }, 1, 4096,
      "Latent dimensions; the encoder gets a linear head to (mu, logvar)."));
  k.push_back(layers(
      "model.encoder", [](Config & c) -> auto& { return c.model.encoder; },
      "Encoder trunk, from the image (flat when it starts with linear) to features."));
  k.push_back(layers(
      "model.decoder", [](Config & c) -> auto& { return c.model.decoder; },
      "Decoder from z to the likelihood's parameters: C*H*W values, or (C, H, W) "
      "(2C channels for a Gaussian with learned variance)."));
  k.push_back(layers(
      "model.discriminator", [](Config & c) -> auto& { return c.model.discriminator; },
      "implicit_prior_vae and aae: T(z) from the latent code to 1 output; gan: T(x) from the "
      "image (flat when it starts with linear) to 1 output."));
  k.push_back(number<double>(
      "model.discriminator_cap", [](Config& c) -> double& { return c.model.discriminator_cap; }, 0,
      1000,
      "implicit_prior_vae: T(z) = c - softplus(c - T_net(z)), the discriminator's output "
      "smoothly bounded above by c nats, so Z = E_p[exp T] <= exp(c) (0: no bound)."));
  k.push_back(layers(
      "model.generator", [](Config & c) -> auto& { return c.model.generator; },
      "gan: G(z) from the latent to the image's C*H*W values or (C, H, W), in [0, 1] (end with "
      "sigmoid)."));
  k.push_back(choice(
      "model.likelihood", [](Config& c) -> std::string& { return c.model.likelihood; },
      {"bernoulli", "gaussian"}, "Decoder distribution p(x|z) per pixel."));
  k.push_back(choice(
      "model.gaussian_variance",
      [](Config& c) -> std::string& { return c.model.gaussian_variance; }, {"fixed", "learned"},
      "Gaussian likelihood: variance fixed (model.gaussian_logvar) or a second "
      "decoder output per pixel."));
  k.push_back(number<double>(
      "model.gaussian_logvar", [](Config& c) -> double& { return c.model.gaussian_logvar; }, -20,
      20, "Fixed per-pixel log-variance of the Gaussian likelihood."));
  k.push_back(number<double>(
      "model.logvar_floor", [](Config& c) -> double& { return c.model.logvar_floor; }, -20, 20,
      "Floor on a learned Gaussian log-variance (no gradient below it)."));
}

// The training objective.
void add_objective_keys(std::vector<KeyInfo>& k) {
  k.push_back(choice(
      "objective.estimator", [](Config& c) -> std::string& { return c.objective.estimator; },
      {"A", "B"},
      "SGVB estimator: B = MC reconstruction + analytic KL; A = MC of the whole "
      "ELBO, log p(z) + log p(x|z) - log q(z|x)."));
  k.push_back(number<int>(
      "objective.samples", [](Config& c) -> int& { return c.objective.samples; }, 1, 1024,
      "Monte Carlo samples L of z per image."));
  k.push_back(number<double>(
      "objective.beta", [](Config& c) -> double& { return c.objective.beta; }, 0, 1000,
      "Weight of the KL term after warm-up."));
  k.push_back(number<double>(
      "objective.warmup_epochs", [](Config& c) -> double& { return c.objective.warmup_epochs; }, 0,
      1e6, "KL warm-up: beta_t = beta * min(1, epochs_done / warmup)."));
  k.push_back(number<double>(
      "objective.free_bits", [](Config& c) -> double& { return c.objective.free_bits; }, 0, 100,
      "Free bits lambda (estimator B): each latent dimension's "
      "batch-averaged KL is floored at lambda nats."));
  k.push_back(number<int>(
      "objective.n_disc", [](Config& c) -> int& { return c.objective.n_disc; }, 1, 1000,
      "Discriminator updates per model update (each on the step's batch with fresh noise)."));
  k.push_back(number<double>(
      "objective.proximal", [](Config& c) -> double& { return c.objective.proximal; }, 0, 1e6,
      "gan: lambda of the proximal term lambda * mean ||G(z) - G'(z)||^2, G' the generator "
      "before its previous update (0: off)."));
  k.push_back(number<double>(
      "objective.instance_noise", [](Config& c) -> double& { return c.objective.instance_noise; },
      0, 10,
      "gan: sigma0 of the instance noise: D sees x + sigma_t eps, eps ~ N(0, I), for real and "
      "generated images alike, sigma_t = sigma0 * (1 - t), t = epochs done / train.epochs (0: "
      "off)."));
}

// The data files and how they are read.
void add_data_keys(std::vector<KeyInfo>& k) {
  k.push_back(text(
      "data.train", [](Config& c) -> std::string& { return c.data.train; },
      "Training shards: an HDF5 file or a glob such as data/fmnist-train-*.h5."));
  k.push_back(text(
      "data.validation", [](Config& c) -> std::string& { return c.data.validation; },
      "Validation shards (optional): ELBO reported each epoch."));
  k.push_back(text(
      "data.test", [](Config& c) -> std::string& { return c.data.test; },
      "Test shards (optional): used by distvae eval when --data is not given."));
  k.push_back(choice(
      "data.binarize", [](Config& c) -> std::string& { return c.data.binarize; },
      {"dynamic", "none"},
      "dynamic: each pixel re-drawn as Bernoulli(intensity) at every use; none: "
      "intensities in [0, 1]."));
  k.push_back(choice(
      "data.preload", [](Config& c) -> std::string& { return c.data.preload; },
      {"auto", "on", "off"}, "Hold the training set in memory (auto: when it is under 2 GiB)."));
  k.push_back(number<int>(
      "data.shuffle_window", [](Config& c) -> int& { return c.data.shuffle_window; }, 0, 1 << 20,
      "Chunks of each rank's share whose images are shuffled together each epoch; streamed, "
      "also the decompressed chunks held in memory (0: all, a full shuffle, when the set is "
      "preloaded; 4 when streamed)."));
  k.push_back(number<int64_t>(
      "data.max_images", [](Config& c) -> int64_t& { return c.data.max_images; }, 0, kBig,
      "Use only the first N training images, rounded down to whole chunks, at least one (0: "
      "all)."));
  k.push_back(number<int>(
      "data.loader_threads", [](Config& c) -> int& { return c.data.loader_threads; }, 1, 64,
      "Threads per rank decompressing streamed chunks (preload off): the loader thread plus "
      "N - 1 helpers, for gzip or uncompressed shards; other filters (lzf) are decoded by "
      "HDF5 on the loader thread alone."));
  k.push_back(choice(
      "data.decode_on", [](Config& c) -> std::string& { return c.data.decode_on; },
      {"auto", "loader", "compute"},
      "Threads that decompress chunks and turn images into floats: the loader thread "
      "(overlapping compute, best when the rank has a core beyond its compute threads) or the "
      "compute threads at the start of each step, all together (best when they fill the "
      "cores: loader work then preempts one of them while the others wait for it); auto: "
      "compute when the rank has no spare core and several compute threads. With compute, "
      "data.loader_threads is unused."));
}

// The optimizers: the model's and the discriminator's (the same keys).
void add_optim_keys(std::vector<KeyInfo>& k) {
  using OptimRef = OptimConfig& (*)(Config&);
  for (const auto& section :
       {std::pair<std::string, OptimRef>{"optim",
                                         [](Config& c) -> OptimConfig& { return c.optim; }},
        std::pair<std::string, OptimRef>{"disc_optim",
                                         [](Config& c) -> OptimConfig& { return c.disc_optim; }}}) {
    const std::string p = section.first + ".";
    const OptimRef of = section.second;  // a plain variable: lambdas below capture it
    k.push_back(choice(
        p + "kind", [of](Config& c) -> std::string& { return of(c).kind; }, {"adam", "sgd"},
        "Optimizer."));
    k.push_back(number<double>(
        p + "lr", [of](Config& c) -> double& { return of(c).lr; }, 0, 10,
        "Learning rate (not scaled by world size)."));
    k.push_back(number<double>(
        p + "beta1", [of](Config& c) -> double& { return of(c).beta1; }, 0, 0.999999,
        "Adam first-moment decay."));
    k.push_back(number<double>(
        p + "beta2", [of](Config& c) -> double& { return of(c).beta2; }, 0, 0.999999999,
        "Adam second-moment decay."));
    k.push_back(number<double>(
        p + "eps", [of](Config& c) -> double& { return of(c).eps; }, 0, 1, "Adam epsilon."));
    k.push_back(number<double>(
        p + "weight_decay", [of](Config& c) -> double& { return of(c).weight_decay; }, 0, 1,
        "Adam: decoupled (AdamW); SGD: L2 added to the gradient."));
    k.push_back(number<double>(
        p + "momentum", [of](Config& c) -> double& { return of(c).momentum; }, 0, 0.9999,
        "SGD momentum."));
    k.push_back(choice(
        p + "schedule", [of](Config& c) -> std::string& { return of(c).schedule; },
        {"constant", "cosine"},
        "Learning-rate schedule over the run (cosine decays to optim.lr_min)."));
    k.push_back(number<double>(
        p + "lr_min", [of](Config& c) -> double& { return of(c).lr_min; }, 0, 10,
        "Final learning rate of the cosine schedule."));
    k.push_back(number<double>(
        p + "grad_clip", [of](Config& c) -> double& { return of(c).grad_clip; }, 0, 1e9,
        "Clip each network's gradient to this global L2 norm (0: off)."));
  }
  for (KeyInfo& key : k)
    if (key.path.rfind("disc_optim.", 0) == 0) key.doc = "Discriminator's optimizer: " + key.doc;
}

// The training run.
void add_train_keys(std::vector<KeyInfo>& k) {
  k.push_back(number<int>(
      "train.batch", [](Config& c) -> int& { return c.train.batch; }, 1, 1 << 16,
      "Images per step per rank."));
  k.push_back(number<int>(
      "train.epochs", [](Config& c) -> int& { return c.train.epochs; }, 1, 1 << 20,
      "Passes over the training set."));
  k.push_back(number<int64_t>(
      "train.seed", [](Config& c) -> int64_t& { return c.train.seed; }, 0, kBig,
      "Seed of every random draw; same seed, same run."));
  k.push_back(choice(
      "train.backend", [](Config& c) -> std::string& { return c.train.backend; },
      {"dnnl", "reference", "cuda"}, "Compute backend (cuda: CUDA builds, one GPU per rank)."));
  k.push_back(number<int>(
      "train.threads", [](Config& c) -> int& { return c.train.threads; }, 0, 1024,
      "Compute threads (0: OMP_NUM_THREADS or all cores)."));
  k.push_back(number<int>(
      "train.log_every", [](Config& c) -> int& { return c.train.log_every; }, 1, 1 << 30,
      "Steps between metrics records."));
  k.push_back(number<int>(
      "train.checkpoint_every", [](Config& c) -> int& { return c.train.checkpoint_every; }, 1,
      1 << 20, "Epochs between checkpoints (one is always written at the end)."));
  k.push_back(number<int>(
      "train.keep_checkpoints", [](Config& c) -> int& { return c.train.keep_checkpoints; }, 1, 1000,
      "Checkpoints kept in the run directory."));
  k.push_back(number<int>(
      "train.sample_grid", [](Config& c) -> int& { return c.train.sample_grid; }, 1, 1024,
      "Images in samples.png and recon.png each epoch."));
  k.push_back(number<int>(
      "train.bucket_kb", [](Config& c) -> int& { return c.train.bucket_kb; }, 1, 1 << 20,
      "Gradient all-reduce bucket size in KiB (buckets cut in reverse layer "
      "order, reduced in the same order on every rank)."));
  k.push_back(choice(
      "train.overlap", [](Config& c) -> std::string& { return c.train.overlap; },
      {"auto", "true", "false"},
      "Start each bucket's all-reduce on a communication thread as soon as backward has "
      "finished it (false: all after backward; auto: true when the rank has a CPU beyond its "
      "compute threads that no other rank of the node needs, else false)."));
  k.push_back(flag(
      "train.shm_allreduce", [](Config& c) -> bool& { return c.train.shm_allreduce; },
      "CPU backends, several ranks: keep each rank's gradients in POSIX shared memory that the "
      "other ranks of its node map, and all-reduce them there with plain loads (each rank sums "
      "its share, then copies the others'), across nodes with MPI between the two passes. "
      "Without overlap, each rank then updates only its share of the parameters (and of the "
      "optimizer's moments) and copies the others' from their ranks. false, or if /dev/shm "
      "cannot hold them: MPI_Allreduce on private memory."));
  k.push_back(flag(
      "train.requeue", [](Config& c) -> bool& { return c.train.requeue; },
      "On SIGTERM/SIGUSR1 (preemption), after the checkpoint, run scontrol requeue "
      "$SLURM_JOB_ID (under SLURM only). The run exits with code 75 either way."));
  k.push_back(number<double>(
      "train.hang_timeout", [](Config& c) -> double& { return c.train.hang_timeout; }, 0, 1e7,
      "With several ranks: seconds a rank may make no progress before the "
      "job is aborted (exit 3) naming the rank whose heartbeat stopped; "
      "must exceed the longest validation or checkpoint (0: off)."));
  k.push_back(number<int>(
      "train.checkpoint_every_steps",
      [](Config& c) -> int& { return c.train.checkpoint_every_steps; }, 0, 1 << 30,
      "Also checkpoint every N optimizer steps (0: off)."));
  k.push_back(number<double>(
      "train.checkpoint_minutes", [](Config& c) -> double& { return c.train.checkpoint_minutes; },
      0, 1e6, "Also checkpoint every M minutes of wall clock (0: off)."));
  k.push_back(choice(
      "train.on_nonfinite", [](Config& c) -> std::string& { return c.train.on_nonfinite; },
      {"stop", "skip"},
      "A NaN or Inf in the loss terms or gradients (seen on any rank): stop "
      "(exit 4, naming the step and the term) or skip the step (counted in "
      "metrics as skipped_steps)."));
}

// Evaluation.
void add_eval_keys(std::vector<KeyInfo>& k) {
  k.push_back(number<int>(
      "eval.iw_samples", [](Config& c) -> int& { return c.eval.iw_samples; }, 1, 100000,
      "K of the importance-weighted log-likelihood bound."));
  k.push_back(number<int>(
      "eval.iw_batch", [](Config& c) -> int& { return c.eval.iw_batch; }, 1, 100000,
      "Importance samples evaluated per pass (bounds memory)."));
  k.push_back(number<int64_t>(
      "eval.max_images", [](Config& c) -> int64_t& { return c.eval.max_images; }, 0, kBig,
      "Evaluate only the first N images (0: all)."));
  k.push_back(number<int64_t>(
      "eval.binarize_seed", [](Config& c) -> int64_t& { return c.eval.binarize_seed; }, 0, kBig,
      "Seed of the one fixed binarization of evaluation images."));
}

// Every key, grouped by section in the order dump_config and docs/config.md list them.
std::vector<KeyInfo> build_keys() {
  std::vector<KeyInfo> k;
  add_model_keys(k);
  add_objective_keys(k);
  add_data_keys(k);
  add_optim_keys(k);
  add_train_keys(k);
  add_eval_keys(k);
  return k;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string nearest_key(const std::string& path) {
  std::string best;
  size_t best_d = 1000;
  for (const KeyInfo& k : config_keys()) {
    // Compare full paths and, so that a misplaced key is found too, the last components.
    const std::string leaf = k.path.substr(k.path.rfind('.') + 1);
    const std::string pleaf = path.substr(path.rfind('.') + 1);
    size_t d = std::min(edit_distance(path, k.path), edit_distance(pleaf, leaf) + 1);
    if (d < best_d) best_d = d, best = k.path;
  }
  return best_d <= std::max<size_t>(3, path.size() / 3) ? best : "";
}

const KeyInfo* find_key(const std::string& path) {
  for (const KeyInfo& k : config_keys())
    if (k.path == path) return &k;
  return nullptr;
}

[[noreturn]] void unknown_key(const std::string& where, const std::string& path) {
  std::string msg = where + ": unknown key '" + path + "'";
  std::string near = nearest_key(path);
  if (!near.empty()) msg += " (did you mean '" + near + "'?)";
  throw ConfigError(msg);
}

bool is_section(const std::string& path) {
  for (const KeyInfo& k : config_keys())
    if (k.path.rfind(path + ".", 0) == 0) return true;
  return false;
}

std::string first_key_in(const std::string& section) {
  for (const KeyInfo& k : config_keys())
    if (k.path.rfind(section + ".", 0) == 0) return k.path.substr(section.size() + 1);
  return "";
}

void apply_map(Config& c, const YAML::Node& node, const std::string& prefix,
               const std::string& where) {
  for (const auto& kv : node) {
    if (!kv.first.IsScalar())  // e.g. "? [a, b]": YAML allows it, a config key never is one
      throw ConfigError(where + ": a key under '" + (prefix.empty() ? "(top level)" : prefix) +
                        "' is a " +
                        (kv.first.IsMap()        ? "map"
                         : kv.first.IsSequence() ? "list"
                                                 : "null") +
                        ", expected a plain name");
    const std::string path = (prefix.empty() ? "" : prefix + ".") + kv.first.as<std::string>();
    if (const KeyInfo* k = find_key(path)) {
      try {
        k->set(c, kv.second);
      } catch (const ConfigError& e) {
        throw ConfigError(where + ": " + e.what());
      }
    } else if (is_section(path)) {
      if (!kv.second.IsMap())
        throw ConfigError(where + ": '" + path + "' is a section: expected a map of keys such as " +
                          first_key_in(path) + ": ...");
      apply_map(c, kv.second, path, where);
    } else {
      unknown_key(where, path);
    }
  }
}

void check_rules(const Config& c, const std::string& where) {
  auto fail = [&](const std::string& m) { throw ConfigError(where + ": " + m); };
  const std::string& fam = c.model.family;
  if (fam == "gan") {
    if (!c.model.encoder.empty())
      fail(
          "model.encoder: a gan has no encoder (its networks are model.generator and "
          "model.discriminator); remove model.encoder or use model.family: aae");
    if (!c.model.decoder.empty())
      fail("model.decoder: a gan has no decoder; its generator is model.generator");
    if (c.model.generator.empty()) fail("model.generator: missing (a gan needs a layer list)");
  } else {
    if (c.model.encoder.empty()) fail("model.encoder: missing (a list of layers)");
    if (c.model.decoder.empty()) fail("model.decoder: missing (a list of layers)");
    if (!c.model.generator.empty())
      fail("model.generator: only model.family: gan has a generator (a " + fam +
           " decodes with model.decoder)");
  }
  if (has_discriminator(c.model) && c.model.discriminator.empty())
    fail("model.discriminator: missing (model.family: " + fam +
         " needs a layer list ending in "
         "one output)");
  if (!has_discriminator(c.model) && !c.model.discriminator.empty())
    fail(
        "model.discriminator: model.family: vae has no discriminator (use implicit_prior_vae, "
        "aae or gan)");
  if (c.model.discriminator_cap > 0 && fam != "implicit_prior_vae")
    fail(
        "model.discriminator_cap: applies to model.family: implicit_prior_vae only (it bounds "
        "the log density ratio T(z))");
  if (c.objective.proximal > 0 && fam != "gan")
    fail("objective.proximal: applies to model.family: gan only");
  if (c.objective.instance_noise > 0 && fam != "gan")
    fail("objective.instance_noise: applies to model.family: gan only (it blurs D(x)'s input)");
  if (fam == "aae" && c.objective.estimator != "B")
    fail("objective.estimator: aae needs B (its adversarial term replaces the analytic KL)");
  if (fam == "gan" && c.data.binarize != "none")
    fail("data.binarize: a gan learns the intensities themselves; set data.binarize: none");
  if (c.data.train.empty()) fail("data.train: missing (HDF5 shards: a file or a glob)");
  if (c.objective.free_bits > 0 && c.objective.estimator != "B")
    fail("objective.free_bits needs objective.estimator: B (free bits act on the analytic KL)");
  if (c.model.likelihood == "bernoulli" && c.model.gaussian_variance == "learned")
    fail("model.gaussian_variance: learned applies to model.likelihood: gaussian only");
  if (find_autoregressive(c.model.decoder) != c.model.decoder.end() && c.data.binarize != "dynamic")
    fail(
        "data.binarize: an autoregressive decoder models binary pixels, each given those before "
        "it; set data.binarize: dynamic");
}

// yaml-cpp keeps a key written twice in a map and answers lookups with the first, so a config
// with `latent: 8` then `latent: 16` silently used 8. Every map, at any depth, must have each key
// once.
void check_unique_keys(const YAML::Node& node, const std::string& path, const std::string& source) {
  if (node.IsSequence())
    for (size_t i = 0; i < node.size(); ++i)
      check_unique_keys(node[i], path + "[" + std::to_string(i) + "]", source);
  if (!node.IsMap()) return;
  std::map<std::string, YAML::Mark> first_at;
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const std::string full = path.empty() ? key : path + "." + key;
    const YAML::Mark at = kv.first.Mark();
    const auto [it, fresh] = first_at.emplace(key, at);
    const YAML::Mark& was = it->second;
    if (!fresh)  // a one-line value (--set, flow style) by columns
      throw ConfigError(source + ": " + full + " is written twice (" +
                        (was.line != at.line ? "lines " + std::to_string(was.line + 1) + " and " +
                                                   std::to_string(at.line + 1)
                                             : "columns " + std::to_string(was.column + 1) +
                                                   " and " + std::to_string(at.column + 1)) +
                        "); keep one");
    check_unique_keys(kv.second, full, source);
  }
}

}  // namespace

bool has_discriminator(const ModelConfig& m) {
  return m.family != "vae";
}
bool is_vae_family(const ModelConfig& m) {
  return m.family != "gan";
}

const std::vector<KeyInfo>& config_keys() {
  static const std::vector<KeyInfo> keys = build_keys();
  return keys;
}

Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides) {
  // YAML is Unicode text; other bytes would not survive dump_config and a re-parse unchanged.
  if (!valid_utf8(yaml_text)) throw ConfigError(source + ": not UTF-8 text (configs are UTF-8)");
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source + ": YAML syntax error at line " + std::to_string(e.mark.line + 1) +
                      ", column " + std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  Config c;
  if (root && !root.IsNull()) {
    if (!root.IsMap()) throw ConfigError(source + ": expected a map of sections at the top level");
    check_unique_keys(root, "", source);
    apply_map(c, root, "", source);
  }
  for (const std::string& o : overrides) {
    if (!valid_utf8(o)) throw ConfigError("--set " + o + ": not UTF-8 text");
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError("--set " + o + ": expected key.path=value");
    const std::string path = o.substr(0, eq);
    const KeyInfo* k = find_key(path);
    if (!k) unknown_key("--set " + o, path);
    YAML::Node v;
    try {
      v = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      throw ConfigError("--set " + o + ": cannot parse the value: " + e.msg);
    }
    check_unique_keys(v, path, "--set " + o);
    try {
      k->set(c, v);
    } catch (const ConfigError& e) {
      throw ConfigError("--set " + o + ": " + e.what());
    }
  }
  check_rules(c, source);
  return c;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream f(path);
  if (!f) throw ConfigError(path + ": cannot open the config file");
  std::stringstream s;
  s << f.rdbuf();
  return parse_config(s.str(), path, overrides);
}

std::string config_keys_markdown() {
  std::string out = "| key | type | default | range | meaning |\n|---|---|---|---|---|\n";
  auto cell = [](std::string s) {  // a '|' inside a cell would end it
    for (size_t i = 0; (i = s.find('|', i)) != std::string::npos; i += 2) s.insert(i, "\\");
    return s;
  };
  for (const KeyInfo& k : config_keys())
    out += "| `" + k.path + "` | " + k.type + " | `" + k.default_value + "` | " + cell(k.range) +
           " | " + cell(k.doc) + " |\n";
  return out;
}

std::string dump_config(const Config& c) {
  std::string out, section;
  for (const KeyInfo& k : config_keys()) {
    const std::string sec = k.path.substr(0, k.path.find('.'));
    if (sec != section) out += sec + ":\n", section = sec;
    out += "  " + k.path.substr(k.path.find('.') + 1) + ": " + k.show(c) + "\n";
  }
  return out;
}

}  // namespace distvae
