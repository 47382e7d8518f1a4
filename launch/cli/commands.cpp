// The subcommands of distvae that run a launch/ function: their options and their callbacks.
// convert and bench register themselves (launch/cli/convert_command.h, bench_command.h).
#include "launch/cli/commands.h"

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "io/output/report.h"
#include "launch/cli/bench_command.h"
#include "launch/cli/convert_command.h"
#include "launch/cli/mpi_job.h"
#include "launch/config/config.h"
#include "launch/eval/evaluate.h"
#include "launch/eval/gradvar.h"
#include "launch/eval/latent_tools.h"
#include "launch/train/model_setup.h"
#include "launch/train/trainer.h"

namespace distvae {

namespace {

struct TrainArgs {
  std::string config;
  std::vector<std::string> sets;
  TrainOptions run{.run_dir = "runs/latest"};
};

void register_train(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "Train a model from a YAML config");
  cmd->add_option("config", a->config, "YAML config file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--run-dir", a->run.run_dir,
                  "Run directory (config, metrics, checkpoints, images)");
  cmd->add_flag("--resume", a->run.resume,
                "Continue from the newest valid checkpoint in --run-dir");
  cmd->add_flag("--overwrite", a->run.overwrite,
                "Start a new run in a --run-dir that holds one, moving the earlier run's files "
                "into <run-dir>/replaced-<time>/ (nothing is deleted)")
      ->excludes("--resume");
  cmd->add_option("--set", a->sets, "Override a config key: --set train.epochs=5 (repeatable)");
  cmd->add_flag("--quiet", a->run.quiet, "Print nothing but errors");
  cmd->add_option("--log-every", a->run.log_every_seconds,
                  "Seconds between progress lines when stdout is not a terminal (a terminal "
                  "gets a live line)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--stop-after-epochs", a->run.stop_after_epochs,
                  "Stop (with a checkpoint) after this many epochs of this invocation")
      ->check(CLI::Range(1, 1000000));
  cmd->callback([a, &exit_code] {
    exit_code = run_mpi_job([&](Communicator& comm) {
      const Config c = load_config(a->config, a->sets);
      return train(c, a->run, comm);
    });
  });
}

void add_ais_options(CLI::App* cmd, AisOptions& ais) {
  cmd->add_option("--ais-chains", ais.chains, "AIS chains (split over the ranks)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--ais-temperatures", ais.temperatures, "AIS temperatures")
      ->check(CLI::Range(1, 1 << 24));
  cmd->add_option("--ais-leapfrog", ais.leapfrog, "Leapfrog steps per HMC transition")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--ais-step", ais.step_size,
                  "Initial HMC step size (adapted by pilot chains, whose step sizes the others "
                  "then follow)")
      ->check(CLI::Range(1e-6, 10.0));
}

// The AIS chains and the test images are split over the ranks under mpirun.
void register_eval(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<EvalOptions>();
  auto* cmd = app.add_subcommand("eval", "Test ELBO and importance-weighted log-likelihood");
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint file")->required();
  cmd->add_option("--data", o->data, "HDF5 shards (default: the config's data.<split>)");
  cmd->add_option("--split", o->split, "test, validation or train")
      ->check(CLI::IsMember({"test", "validation", "train"}));
  cmd->add_option("--iw", o->iw_samples, "Importance samples K (default: eval.iw_samples)")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--max-images", o->max_images, "Evaluate only the first N images")
      ->check(CLI::Range(int64_t(1), int64_t(1'000'000'000'000)));
  cmd->add_option("--json", o->out_json, "Also write the figures to this JSON file");
  cmd->add_flag("--normalize-prior", o->normalize_prior,
                "implicit_prior_vae: estimate log Z of p(z) exp(T(z)) by annealed importance "
                "sampling and report the normalized log-likelihood too");
  cmd->add_option("--quality", o->quality_images,
                  "Also compute MMD and class coverage of N generated images against the "
                  "evaluated set (e.g. 10000)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--ratio-check", o->ratio_check,
                  "implicit_prior_vae: compare T(z) with the exact log q(z)/p(z) of the "
                  "aggregated posterior (the mixture of the training set's encoder Gaussians) at "
                  "N draws of q and of p")
      ->check(CLI::Range(0, 100000));
  add_ais_options(cmd, o->ais);
  cmd->add_option("--ais-runs", o->ais_runs, "Independent AIS runs (their spread is reported)")
      ->check(CLI::Range(1, 100));
  cmd->add_option(
         "--ais", o->marginal.chains,
         "VAE families: log p(x) of every image by annealed importance sampling from the "
         "prior with this many chains per image (e.g. 16), HMC transitions (--ais-leapfrog, "
         "--ais-step); images split over the ranks")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--ais-schedule", o->marginal.temperatures,
                  "Temperatures of --ais and --bdmc (default 1000)")
      ->check(CLI::Range(1, 1 << 24));
  cmd->add_option("--bdmc", o->marginal.bdmc,
                  "VAE and aae: simulate N images from the model and bound their mean log p(x) "
                  "from below (forward AIS) and above (reverse AIS from the z that made each "
                  "image) at --ais-schedule / 8, / 4, / 2 and itself, stopping where the gap "
                  "falls below --bdmc-target")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--ais-gaussian", o->marginal.gaussian_sigma,
                  "--ais and --bdmc with p(x|z) = N(x; mean(z), SIGMA^2 I) on the intensities: the "
                  "decoder's mean (a Bernoulli decoder's sigmoid) or a gan's generator output, so "
                  "that GANs and VAEs are compared on one scale; choose SIGMA by the best "
                  "log-likelihood on --split validation")
      ->check(CLI::Range(1e-6, 1e6));
  cmd->add_option("--bdmc-target", o->marginal.bdmc_target,
                  "The BDMC gap in nats a schedule should close (default 1)")
      ->check(CLI::Range(1e-6, 1e6));
  cmd->callback([o, &exit_code] {
    exit_code = run_mpi_job([&](Communicator& comm) { return evaluate(*o, comm); });
  });
}

void register_sample(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<SampleOptions>();
  auto* cmd = app.add_subcommand("sample", "Decode samples z ~ N(0, I) into a PNG grid");
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint file")->required();
  cmd->add_option("--n", o->n, "Number of samples")->check(CLI::Range(1, 4096));
  cmd->add_option("--out", o->out_png,
                  "Output PNG grid; or, for a name ending in .h5, an HDF5 file of the draws z (n x "
                  "latent) and the images (n x C*H*W floats in [0, 1], channel-major)")
      ->required();
  cmd->add_option("--seed", o->seed, "Seed of the z draws")->check(CLI::NonNegativeNumber);
  cmd->add_option("--prior", o->prior,
                  "standard: z ~ N(0, I); learned: the implicit prior p(z) exp(T(z)) / Z (AIS "
                  "chains resampled by weight); aggregate: z ~ q(z|x) of training images")
      ->check(CLI::IsMember({"standard", "learned", "aggregate"}));
  add_ais_options(cmd, o->ais);
  cmd->callback([o, &exit_code] {
    o->ais.seed = uint64_t(o->seed);  // the learned prior's chains draw from the same seed
    exit_code = run_mpi_job([&](Communicator& comm) { return sample(*o, comm); });
  });
}

struct GradvarArgs {
  std::string checkpoint, data;
  int batch = 64, draws = 100;
};

void register_gradvar(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<GradvarArgs>();
  auto* cmd = app.add_subcommand(
      "gradvar", "Encoder gradient variance: reparameterization vs score-function estimator");
  cmd->add_option("--checkpoint", a->checkpoint, "Checkpoint file")->required();
  cmd->add_option("--data", a->data, "HDF5 shards (default: the config's data.validation)");
  cmd->add_option("--batch", a->batch, "Images in the batch")->check(CLI::Range(1, 4096));
  cmd->add_option("--draws", a->draws, "Independent noise draws")->check(CLI::Range(2, 100000));
  cmd->callback([a, &exit_code] {
    exit_code = gradient_variance(a->checkpoint, a->data, a->batch, a->draws);
  });
}

struct EncodeArgs {
  std::string checkpoint, data, out;
};

void register_encode(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<EncodeArgs>();
  auto* cmd = app.add_subcommand("encode", "Posterior means and log-variances of every image");
  cmd->add_option("--checkpoint", a->checkpoint, "Checkpoint file")->required();
  cmd->add_option("--data", a->data, "HDF5 shards (default: the config's data.test)");
  cmd->add_option("--out", a->out, "Output HDF5 file (datasets mu, logvar, labels)")->required();
  cmd->callback([a, &exit_code] { exit_code = encode_images(a->checkpoint, a->data, a->out); });
}

struct InterpolateArgs {
  std::string checkpoint, data, out;
  int64_t from = 0, to = 1;
  int steps = 10;
};

void register_interpolate(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<InterpolateArgs>();
  auto* cmd = app.add_subcommand("interpolate", "Decode the line between two images' codes");
  cmd->add_option("--checkpoint", a->checkpoint, "Checkpoint file")->required();
  cmd->add_option("--data", a->data, "HDF5 shards (default: the config's data.test)");
  cmd->add_option("--from", a->from, "Index of the first image")->check(CLI::NonNegativeNumber);
  cmd->add_option("--to", a->to, "Index of the second image")->check(CLI::NonNegativeNumber);
  cmd->add_option("--steps", a->steps, "Images in the strip")->check(CLI::Range(2, 256));
  cmd->add_option("--out", a->out, "Output PNG")->required();
  cmd->callback([a, &exit_code] {
    exit_code = interpolate(a->checkpoint, a->data, a->from, a->to, a->steps, a->out);
  });
}

void register_report(CLI::App& app, int& exit_code) {
  auto run_dir = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("report", "Write RUN_DIR/report.html (curves, images, config)");
  cmd->add_option("run_dir", *run_dir, "Run directory")->required()->check(CLI::ExistingDirectory);
  cmd->callback([run_dir, &exit_code] {
    std::printf("wrote %s\n", write_report(*run_dir).c_str());
    exit_code = 0;
  });
}

struct ConfigArgs {
  std::string config;
  std::vector<std::string> sets;
};

void register_config(CLI::App& app, int& exit_code) {
  auto* config = app.add_subcommand("config", "Show or check a config");
  config->require_subcommand(1);
  auto show = std::make_shared<ConfigArgs>();
  auto* show_cmd = config->add_subcommand("show", "Print the resolved config with every default");
  show_cmd->add_option("config", show->config, "YAML config file")->required();
  show_cmd->add_option("--set", show->sets, "Override a config key (repeatable)");
  show_cmd->callback([show, &exit_code] {
    std::fputs(dump_config(load_config(show->config, show->sets)).c_str(), stdout);
    exit_code = 0;
  });
  auto* keys =
      config->add_subcommand("keys", "Print every config key as a Markdown table (docs/config.md)");
  keys->callback([&exit_code] {
    std::fputs(config_keys_markdown().c_str(), stdout);
    exit_code = 0;
  });
  auto check = std::make_shared<ConfigArgs>();
  auto* check_cmd = config->add_subcommand("check", "Validate a config without running");
  check_cmd->add_option("config", check->config, "YAML config file")->required();
  check_cmd->add_option("--set", check->sets, "Override a config key (repeatable)");
  check_cmd->callback([check, &exit_code] {
    // Everything train checks before it reads data: keys, rules, and the networks' shapes
    // against data.train's image size when its files are there. Each throws, naming the problem.
    const Config c = load_config(check->config, check->sets);
    const std::string shapes = check_model_against_data(c);
    std::printf("%s: OK; %s\n", check->config.c_str(), shapes.c_str());
    exit_code = 0;
  });
}

}  // namespace

void register_commands(CLI::App& app, int& exit_code) {
  register_train(app, exit_code);
  register_eval(app, exit_code);
  register_sample(app, exit_code);
  register_gradvar(app, exit_code);
  register_encode(app, exit_code);
  register_interpolate(app, exit_code);
  register_report(app, exit_code);
  register_convert_command(app, exit_code);
  register_bench_command(app, exit_code);
  register_config(app, exit_code);
}

}  // namespace distvae
