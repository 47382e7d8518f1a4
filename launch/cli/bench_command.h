// `distvae bench CONFIG`: training throughput of a config's model on synthetic batches, through
// the same step code as `distvae train` (Trainee), with a step-time breakdown and a oneDNN matmul
// reference of the model's largest linear layer (docs/performance.md).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace distvae {

struct BenchOptions {
  std::string config;
  std::vector<std::string> sets;  // --set key=value overrides, as for train
  int steps = 100;                // timed training steps
  int warmup = 20;                // untimed steps first (primitive creation, caches, page faults)
  int threads = 0;                // compute threads per rank (0: train.threads, then the launcher)
  std::string image;              // "HxWxC"; empty: inferred from the model's output shape
  int iw = 0;                     // > 0: time the importance-weighted evaluation, K = iw
  int64_t images = 1000;          // images for --iw
};

void register_bench_command(CLI::App& app, BenchOptions& o);
// Runs on every rank of the MPI job (singleton without mpirun); rank 0 prints. Returns the exit
// code; throws on error.
int run_bench_command(const BenchOptions& o);

}  // namespace distvae
