// Registration of every distvae subcommand and dispatch to the selected one.
#pragma once

#include <CLI/CLI.hpp>

namespace distvae {

void register_commands(CLI::App& app);
// Runs the subcommand the user chose; returns the process exit code. Throws on error.
int run_selected_command(CLI::App& app);

}  // namespace distvae
