// `distvae convert idx | images | procedural`: the converters of io/convert as subcommands.
// images and procedural run on every rank of a job: each rank writes its own shards, rank 0
// prints the summary read back from disk. Progress with images/s and ETA goes to stderr.
#pragma once

#include <CLI/CLI.hpp>

namespace distvae {

// Registers `convert` and its subcommands; the one chosen runs in app.parse() and leaves its exit
// code in exit_code. For images and procedural, rank and world come from MPI (a singleton run
// outside mpirun / srun is rank 0 of 1); an error on one rank of several aborts the job, naming
// the rank.
void register_convert_command(CLI::App& app, int& exit_code);

}  // namespace distvae
