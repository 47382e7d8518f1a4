// The distvae command: the chosen subcommand runs inside app.parse() (launch/cli/commands.h); this
// is the only place an error becomes a message and an exit code.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <new>

#include "launch/cli/commands.h"
#include "launch/cli/version.h"
#include "launch/train/preemption.h"

int main(int argc, char** argv) {
  distvae::start_signal_thread();  // before any other thread exists
  CLI::App app{"distvae: data-parallel variational autoencoders on oneDNN, MPI and HDF5"};
  app.set_version_flag(
      "--version", [] { return distvae::version_text(); },
      "Print the version, commit, compiler, CPU ISA, libraries and CUDA support");
  app.require_subcommand(1);
  int exit_code = 2;  // set by the subcommand that runs
  distvae::register_commands(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help and friends
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "distvae: error: %s (see distvae --help)\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {  // an allocation without its own message
    std::fprintf(stderr, "distvae: error: out of memory (std::bad_alloc)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "distvae: error: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
