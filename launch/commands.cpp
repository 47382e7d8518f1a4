// The subcommands of distvae and their options.
#include "launch/commands.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "dist/mpi_communicator.h"
#include "io/convert_idx.h"
#include "io/convert_images.h"
#include "io/report.h"
#include "launch/config.h"
#include "launch/evaluate.h"
#include "launch/gradvar.h"
#include "launch/latent_tools.h"
#include "launch/trainer.h"

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

  auto* sample = app.add_subcommand("sample", "Decode samples z ~ N(0, I) into a PNG grid");
  sample->add_option("--checkpoint", a.checkpoint, "Checkpoint file")->required();
  sample->add_option("--n", a.n, "Number of samples")->check(CLI::Range(1, 4096));
  sample->add_option("--out", a.out, "Output PNG")->required();
  sample->add_option("--seed", a.seed, "Seed of the z draws");

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
  auto* images = convert->add_subcommand("images", "A folder of PNG images (recursive)");
  images->add_option("dir", a.dir, "Folder of images")->required()->check(CLI::ExistingDirectory);
  images->add_option("--out", a.out, "Output directory")->required();
  images->add_option("--prefix", a.prefix, "Shard file prefix");
  images->add_option("--split", a.conv_split, "Split name (default train)");
  images->add_option("--channels", a.channels, "1 or 3 (default 1)")->check(CLI::IsMember({1, 3}));
  images->add_option("--chunk", a.chunk, "Images per HDF5 chunk");
  images->add_option("--compress", a.compress, "gzip or none")
      ->check(CLI::IsMember({"gzip", "none"}));
  images->add_option("--shard-images", a.shard_images, "Images per file (0: one file)");
  images->add_flag("--overwrite", a.overwrite, "Replace existing shards");

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
  if (app.got_subcommand("train")) {
    MpiSession mpi(nullptr, nullptr);  // singleton MPI when not started by mpirun / srun
    auto comm = make_mpi_communicator();
    try {
      const Config c = load_config(a.config, a.sets);
      TrainOptions o;
      o.run_dir = a.run_dir, o.resume = a.resume, o.quiet = a.quiet;
      o.stop_after_epochs = a.stop_after;
      o.log_every_seconds = a.log_every;
      return train(c, o, *comm);
    } catch (const std::exception& e) {
      if (comm->size() == 1) throw;
      // One rank's error must end every rank: the others may be waiting in a collective.
      std::fprintf(stderr, "distvae: error: rank %d: %s\n", comm->rank(), e.what());
      std::fflush(stderr);
      comm->abort(1);
    }
  }
  if (app.got_subcommand("eval")) {
    EvalOptions o;
    o.checkpoint = a.checkpoint, o.data = a.data, o.split = a.split, o.iw_samples = a.iw;
    o.max_images = a.max_images, o.out_json = a.out;
    return evaluate(o);
  }
  if (app.got_subcommand("sample")) return sample(a.checkpoint, a.n, a.out, a.seed);
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
    ConvertImagesOptions o;
    o.input_dir = a.dir, o.out_dir = a.out, o.prefix = a.prefix;
    o.split = a.conv_split.empty() ? "train" : a.conv_split;
    o.channels = a.channels > 0 ? a.channels : 1;
    o.chunk_images = a.chunk, o.shard_images = a.shard_images;
    o.compression = compression_from_string(a.compress), o.overwrite = a.overwrite;
    const auto s = convert_images(o);
    print_convert_summary(s.written);
    for (const auto& f : s.skipped)
      std::printf("skipped unreadable: %s (%s)\n", f.path.c_str(), f.reason.c_str());
    return 0;
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
