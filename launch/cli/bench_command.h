// `distvae bench CONFIG`: training throughput of a config's model on synthetic batches, through
// the same step code as `distvae train` (Trainee), with a step-time breakdown and a oneDNN matmul
// reference of the model's largest linear layer (docs/performance.md).
#pragma once

#include <CLI/CLI.hpp>

namespace distvae {

// Registers `bench`; when chosen it runs in app.parse() on every rank of the MPI job (singleton
// without mpirun), rank 0 prints, and it leaves its exit code in exit_code.
void register_bench_command(CLI::App& app, int& exit_code);

}  // namespace distvae
