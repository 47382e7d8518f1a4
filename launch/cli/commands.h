// The distvae subcommands: each has its own options struct and a CLI11 callback that runs it.
#pragma once

#include <CLI/CLI.hpp>

namespace distvae {

// Registers every subcommand on app, in the order --help lists them. The subcommand the user
// chose runs at the end of app.parse() and leaves its exit code in exit_code; its errors
// propagate from app.parse() as exceptions (CLI::ParseError for bad options, before anything
// runs).
void register_commands(CLI::App& app, int& exit_code);

}  // namespace distvae
