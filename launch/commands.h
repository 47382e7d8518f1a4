// Registration of every distvae subcommand and dispatch to the selected one.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

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
  // convert
  std::string images, labels, prefix = "data", compress = "gzip", dir, conv_split;
  int64_t val = 0, chunk = 256, shard_images = 0;
  int channels = 0;
  bool overwrite = false;
};

void register_commands(CLI::App& app, CommandArgs& a);
// Runs the subcommand the user chose; returns the process exit code. Throws on error.
int run_selected_command(CLI::App& app, const CommandArgs& a);

}  // namespace distvae
