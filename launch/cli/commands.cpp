// The subcommands of distvae and their options.
#include "launch/cli/commands.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "io/convert/convert_idx.h"
#include "io/convert/convert_images.h"
#include "io/output/report.h"
#include "launch/cli/convert_command.h"
#include "launch/cli/mpi_job.h"
#include "launch/config/config.h"
#include "launch/eval/evaluate.h"
#include "launch/eval/gradvar.h"
#include "launch/eval/latent_tools.h"
#include "launch/train/trainer.h"

namespace distvae {

namespace {

void print_convert_summary(const ConvertSummary& s) {
  for (const auto& sp : s.splits) {
    std::printf("%-10s %7lld images (%lldx%lldx%lld) in %zu file(s)\n", sp.split.c_str(),
                (long long)sp.count, (long long)s.height, (long long)s.width, (long long)s.channels,
                sp.files.size());
    for (const auto& f : sp.files) std::printf("  %s\n", f.c_str());
  }
}

}  // namespace

void register_commands(CLI::App& app, CommandArgs& a) {
  auto* train = app.add_subcommand("train", "Train a model from a YAML config");
  train->add_option("config", a.config, "YAML config file")->required()->check(CLI::ExistingFile);
  train->add_option("--run-dir", a.run_dir, "Run directory (config, metrics, checkpoints, images)");
  train->add_flag("--resume", a.resume, "Continue from the newest valid checkpoint in --run-dir");
  train->add_option("--set", a.sets, "Override a config key: --set train.epochs=5 (repeatable)");
  train->add_flag("--quiet", a.quiet, "Print nothing but errors");
  train
      ->add_option("--log-every", a.log_every,
                   "Seconds between progress lines when stdout is not a terminal (a terminal "
                   "gets a live line)")
      ->check(CLI::PositiveNumber);
  train->add_option("--stop-after-epochs", a.stop_after,
                    "Stop (with a checkpoint) after this many epochs of this invocation");

  auto* eval = app.add_subcommand("eval", "Test ELBO and importance-weighted log-likelihood");
  eval->add_option("--checkpoint", a.checkpoint, "Checkpoint file")->required();
  eval->add_option("--data", a.data, "HDF5 shards (default: the config's data.<split>)");
  eval->add_option("--split", a.split, "test, validation or train")
      ->check(CLI::IsMember({"test", "validation", "train"}));
  eval->add_option("--iw", a.iw, "Importance samples K (default: eval.iw_samples)");
  eval->add_option("--max-images", a.max_images, "Evaluate only the first N images");
  eval->add_option("--json", a.out, "Also write the figures to this JSON file");
  eval->add_flag("--normalize-prior", a.normalize_prior,
                 "implicit_prior_vae: estimate log Z of p(z) exp(T(z)) by annealed importance "
                 "sampling and report the normalized log-likelihood too");
  eval->add_option("--quality", a.quality,
                   "Also compute MMD and class coverage of N generated images against the "
                   "evaluated set (e.g. 10000)")
      ->check(CLI::Range(0, 1000000));
  eval->add_option("--ratio-check", a.ratio_check,
                   "implicit_prior_vae: compare T(z) with the exact log q(z)/p(z) of the "
                   "aggregated posterior (the mixture of the training set's encoder Gaussians) at "
                   "N draws of q and of p")
      ->check(CLI::Range(0, 100000));

  auto* sample = app.add_subcommand("sample", "Decode samples z ~ N(0, I) into a PNG grid");
  sample->add_option("--checkpoint", a.checkpoint, "Checkpoint file")->required();
  sample->add_option("--n", a.n, "Number of samples")->check(CLI::Range(1, 4096));
  sample->add_option("--out", a.out, "Output PNG")->required();
  sample->add_option("--seed", a.seed, "Seed of the z draws");
  sample
      ->add_option("--prior", a.prior,
                   "standard: z ~ N(0, I); learned: the implicit prior p(z) exp(T(z)) / Z (AIS "
                   "chains resampled by weight); aggregate: z ~ q(z|x) of training images")
      ->check(CLI::IsMember({"standard", "learned", "aggregate"}));
  for (CLI::App* cmd : {eval, sample}) {
    cmd->add_option("--ais-chains", a.ais_chains, "AIS chains (split over the ranks)")
        ->check(CLI::Range(1, 1 << 20));
    cmd->add_option("--ais-temperatures", a.ais_temperatures, "AIS temperatures")
        ->check(CLI::Range(1, 1 << 24));
    cmd->add_option("--ais-leapfrog", a.ais_leapfrog, "Leapfrog steps per HMC transition")
        ->check(CLI::Range(1, 1000));
    cmd->add_option("--ais-step", a.ais_step, "Initial HMC step size (adapted per chain)")
        ->check(CLI::Range(1e-6, 10.0));
  }
  eval->add_option("--ais-runs", a.ais_runs, "Independent AIS runs (their spread is reported)")
      ->check(CLI::Range(1, 100));

  auto* gradvar = app.add_subcommand(
      "gradvar", "Encoder gradient variance: reparameterization vs score-function estimator");
  gradvar->add_option("--checkpoint", a.checkpoint, "Checkpoint file")->required();
  gradvar->add_option("--data", a.data, "HDF5 shards (default: the config's data.validation)");
  gradvar->add_option("--batch", a.n, "Images in the batch")->check(CLI::Range(1, 4096));
  gradvar->add_option("--draws", a.draws, "Independent noise draws")->check(CLI::Range(2, 100000));

  auto* encode = app.add_subcommand("encode", "Posterior means and log-variances of every image");
  encode->add_option("--checkpoint", a.checkpoint, "Checkpoint file")->required();
  encode->add_option("--data", a.data, "HDF5 shards (default: the config's data.test)");
  encode->add_option("--out", a.out, "Output HDF5 file (datasets mu, logvar, labels)")->required();

  auto* interp = app.add_subcommand("interpolate", "Decode the line between two images' codes");
  interp->add_option("--checkpoint", a.checkpoint, "Checkpoint file")->required();
  interp->add_option("--data", a.data, "HDF5 shards (default: the config's data.test)");
  interp->add_option("--from", a.from, "Index of the first image")->check(CLI::NonNegativeNumber);
  interp->add_option("--to", a.to, "Index of the second image")->check(CLI::NonNegativeNumber);
  interp->add_option("--steps", a.steps, "Images in the strip")->check(CLI::Range(2, 256));
  interp->add_option("--out", a.out, "Output PNG")->required();

  auto* report = app.add_subcommand("report", "Write RUN_DIR/report.html (curves, images, config)");
  report->add_option("run_dir", a.run_dir, "Run directory")
      ->required()
      ->check(CLI::ExistingDirectory);

  auto* convert = app.add_subcommand("convert", "Convert images to HDF5 shards");
  convert->require_subcommand(1);
  auto* idx = convert->add_subcommand("idx", "IDX files (MNIST, Fashion-MNIST), plain or .gz");
  idx->add_option("--images", a.images, "IDX images file")->required();
  idx->add_option("--labels", a.labels, "IDX labels file");
  idx->add_option("--out", a.out, "Output directory")->required();
  idx->add_option("--prefix", a.prefix, "Shard file prefix: <out>/<prefix>-<split>-NNNNN.h5");
  idx->add_option("--split", a.conv_split,
                  "Split name when --val is 0 (default: from the file name, t10k* = test)");
  idx->add_option("--val", a.val, "Last N images become the validation split");
  idx->add_option("--chunk", a.chunk, "Images per HDF5 chunk");
  idx->add_option("--compress", a.compress, "gzip or none")->check(CLI::IsMember({"gzip", "none"}));
  idx->add_option("--shard-images", a.shard_images, "Images per file (0: one file per split)");
  idx->add_flag("--overwrite", a.overwrite, "Replace existing shards");
  auto* images = convert->add_subcommand(
      "images",
      "A folder of PNG / JPEG images (recursive, sorted), resized; resumable; under mpirun each "
      "rank writes its own shards");
  images->add_option("dir", a.dir, "Folder of images")->required()->check(CLI::ExistingDirectory);
  images->add_option("--out", a.out, "Output directory")->required();
  images->add_option("--prefix", a.prefix, "Shard file prefix");
  images->add_option("--split", a.conv_split, "Split name (default train)");
  images->add_option("--val", a.val, "Last N files (sorted) become the validation split");
  images->add_option("--size", a.size, "Resize to SIZE x SIZE (default: keep; all must match)")
      ->check(CLI::Range(1, 16384));
  images->add_option("--crop", a.crop, "center: crop the largest centred square first; none")
      ->check(CLI::IsMember({"center", "none"}));
  images->add_option("--filter", a.filter, "Resize filter: area or bilinear (antialiased)")
      ->check(CLI::IsMember({"area", "bilinear"}));
  images->add_flag("--no-jpeg-scaling", a.no_jpeg_scaling,
                   "Decode JPEGs at full size (default: DCT-scaled to >= SIZE, much faster)");
  images->add_option("--channels", a.channels, "1 or 3 (default 1)")->check(CLI::IsMember({1, 3}));
  images->add_flag("--labels", a.labels_from_folders,
                   "Labels from first-level sub-folder names (DIR/<class>/...)");
  images->add_option("--chunk", a.chunk, "Images per HDF5 chunk");
  images->add_option("--compress", a.compress, "gzip, lzf or none")
      ->check(CLI::IsMember({"gzip", "lzf", "none"}));
  images->add_option("--shard-images", a.shard_images,
                     "Input files per shard (0: one file); the unit of resume and of MPI ranks");
  images->add_option("-j,--threads", a.threads, "Decoding threads")->check(CLI::Range(1, 1024));
  images->add_flag("--overwrite", a.overwrite,
                   "Replace shards of a different conversion (shards of this one are kept)");
  images->add_flag("--quiet", a.quiet, "No progress lines (the summary is still printed)");
  auto* proc = convert->add_subcommand(
      "procedural",
      "A generated dataset with ground-truth factors (sprites: dSprites-style 64x64)");
  proc->add_option("--kind", a.kind, "sprites")->check(CLI::IsMember({"sprites"}));
  proc->add_flag("--rgb", a.rgb, "Coloured shapes on gray backgrounds (2 more factors)");
  proc->add_option("--out", a.out, "Output directory")->required();
  proc->add_option("--prefix", a.prefix, "Shard file prefix (default sprites / sprites_rgb)");
  proc->add_option("--order", a.order, "shuffled (a fixed permutation) or grid (dSprites order)")
      ->check(CLI::IsMember({"shuffled", "grid"}));
  proc->add_option("--seed", a.seed, "Seed of the shuffled order and of the RGB colours");
  proc->add_option("--val", a.val, "Last N images of the order become the validation split");
  proc->add_option("--max-images", a.max_images, "Write only the first N images of the order");
  proc->add_option("--chunk", a.chunk, "Images per HDF5 chunk");
  proc->add_option("--compress", a.compress, "gzip, lzf or none")
      ->check(CLI::IsMember({"gzip", "lzf", "none"}));
  proc->add_option("--shard-images", a.proc_shard_images, "Images per shard (0: one file)");
  proc->add_option("-j,--threads", a.threads, "Rendering threads")->check(CLI::Range(1, 1024));
  proc->add_flag("--overwrite", a.overwrite, "Replace shards of a different conversion");
  proc->add_flag("--quiet", a.quiet, "No progress");

  register_bench_command(app, a.bench);

  auto* config = app.add_subcommand("config", "Show or check a config");
  config->require_subcommand(1);
  auto* show = config->add_subcommand("show", "Print the resolved config with every default");
  show->add_option("config", a.config, "YAML config file")->required();
  show->add_option("--set", a.sets, "Override a config key (repeatable)");
  config->add_subcommand("keys", "Print every config key as a Markdown table (docs/config.md)");
  auto* check = config->add_subcommand("check", "Validate a config without running");
  check->add_option("config", a.config, "YAML config file")->required();
  check->add_option("--set", a.sets, "Override a config key (repeatable)");
}

int run_selected_command(CLI::App& app, const CommandArgs& a) {
  if (app.got_subcommand("train"))
    return run_mpi_job([&](Communicator& comm) {
      const Config c = load_config(a.config, a.sets);
      TrainOptions o;
      o.run_dir = a.run_dir, o.resume = a.resume, o.quiet = a.quiet;
      o.stop_after_epochs = a.stop_after;
      o.log_every_seconds = a.log_every;
      return train(c, o, comm);
    });
  if (app.got_subcommand("eval") || app.got_subcommand("sample")) {
    // chains and test images split over ranks under mpirun
    AisOptions ais;
    ais.chains = a.ais_chains, ais.temperatures = a.ais_temperatures;
    ais.leapfrog = a.ais_leapfrog, ais.step_size = a.ais_step, ais.seed = uint64_t(a.seed);
    return run_mpi_job([&](Communicator& comm) {
      if (app.got_subcommand("sample")) {
        SampleOptions o;
        o.checkpoint = a.checkpoint, o.n = a.n, o.out_png = a.out, o.seed = a.seed;
        o.prior = a.prior, o.ais = ais;
        return sample(o, comm);
      }
      EvalOptions o;
      o.checkpoint = a.checkpoint, o.data = a.data, o.split = a.split, o.iw_samples = a.iw;
      o.max_images = a.max_images, o.out_json = a.out;
      o.normalize_prior = a.normalize_prior, o.ais = ais, o.ais_runs = a.ais_runs;
      o.quality_images = a.quality, o.ratio_check = a.ratio_check;
      return evaluate(o, comm);
    });
  }
  if (app.got_subcommand("bench")) return run_bench_command(a.bench);
  if (app.got_subcommand("encode")) return encode_images(a.checkpoint, a.data, a.out);
  if (app.got_subcommand("interpolate"))
    return interpolate(a.checkpoint, a.data, a.from, a.to, a.steps, a.out);
  if (app.got_subcommand("report")) {
    std::printf("wrote %s\n", write_report(a.run_dir).c_str());
    return 0;
  }
  if (app.got_subcommand("gradvar")) return gradient_variance(a.checkpoint, a.data, a.n, a.draws);
  if (auto* conv = app.get_subcommand("convert"); conv->parsed()) {
    if (conv->got_subcommand("idx")) {
      ConvertIdxOptions o;
      o.images_path = a.images, o.labels_path = a.labels, o.out_dir = a.out, o.prefix = a.prefix;
      o.val = a.val, o.chunk_images = a.chunk, o.shard_images = a.shard_images;
      o.compression = compression_from_string(a.compress), o.overwrite = a.overwrite;
      o.split = a.conv_split;
      print_convert_summary(convert_idx(o));
      return 0;
    }
    if (conv->got_subcommand("procedural")) {
      ConvertProceduralOptions o;
      o.kind = a.kind, o.rgb = a.rgb, o.out_dir = a.out;
      o.prefix = a.prefix == "data" ? "" : a.prefix;  // "" picks sprites / sprites_rgb
      o.shuffled = a.order == "shuffled", o.seed = uint64_t(a.seed), o.val = a.val;
      o.max_images = a.max_images > 0 ? a.max_images : 0;
      o.chunk_images = a.chunk, o.shard_images = a.proc_shard_images, o.threads = a.threads;
      o.compression = compression_from_string(a.compress), o.overwrite = a.overwrite;
      return run_convert_procedural(o, a.quiet);
    }
    ConvertImagesOptions o;
    o.input_dir = a.dir, o.out_dir = a.out, o.prefix = a.prefix;
    o.split = a.conv_split.empty() ? "train" : a.conv_split;
    o.val = a.val;
    o.prep.channels = a.channels > 0 ? a.channels : 1;
    o.prep.size = a.size, o.prep.crop_center = a.crop == "center";
    o.prep.filter = resize_filter_from_string(a.filter);
    o.prep.jpeg_dct_scaling = !a.no_jpeg_scaling;
    o.labels = a.labels_from_folders;
    o.chunk_images = a.chunk, o.shard_images = a.shard_images, o.threads = a.threads;
    o.compression = compression_from_string(a.compress), o.overwrite = a.overwrite;
    return run_convert_images(o, a.quiet);
  }
  if (auto* conf = app.get_subcommand("config"); conf->parsed()) {
    if (conf->got_subcommand("keys")) {
      std::fputs(config_keys_markdown().c_str(), stdout);
      return 0;
    }
    const Config c = load_config(a.config, a.sets);
    if (conf->got_subcommand("show"))
      std::fputs(dump_config(c).c_str(), stdout);
    else
      std::printf("%s: OK\n", a.config.c_str());
    return 0;
  }
  return 2;
}

}  // namespace distvae
