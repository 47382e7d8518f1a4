// Registration of every distvae subcommand and dispatch to the selected one.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "launch/cli/bench_command.h"

namespace distvae {

// Storage for every option of every subcommand; CLI11 writes into it while parsing.
struct CommandArgs {
  std::string config, run_dir = "runs/latest", checkpoint, data, out, split = "test";
  std::vector<std::string> sets;
  bool resume = false, quiet = false;
  int stop_after = 0, iw = -1, n = 64, draws = 100;
  int64_t max_images = -1, seed = 1;
  double log_every = 10;
  int64_t from = 0, to = 1;
  int steps = 10;
  // eval / sample: the implicit prior and sample quality
  bool normalize_prior = false;
  int ais_chains = 512, ais_temperatures = 3000, ais_leapfrog = 5, ais_runs = 3, quality = 0,
      ratio_check = 0;
  double ais_step = 0.1;
  std::string prior = "standard";
  // convert
  std::string images, labels, prefix = "data", compress = "gzip", dir, conv_split;
  int64_t val = 0, chunk = 256, shard_images = 0;
  int channels = 0;
  bool overwrite = false;
  // convert images / procedural
  int size = 0, threads = 1;
  std::string crop = "none", filter = "area", kind = "sprites", order = "shuffled";
  bool labels_from_folders = false, no_jpeg_scaling = false, rgb = false;
  int64_t proc_shard_images = 65536;
  BenchOptions bench;
};

void register_commands(CLI::App& app, CommandArgs& a);
// Runs the subcommand the user chose; returns the process exit code. Throws on error.
int run_selected_command(CLI::App& app, const CommandArgs& a);

}  // namespace distvae
