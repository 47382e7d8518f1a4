#include "launch/cli/version.h"

#include <fstream>
#include <string>
#include <thread>

#include "core/backends/cuda_status.h"
#include "core/backends/dnnl.h"
#include "core/backends/isa_clones.h"
#include "dist/mpi_communicator.h"
#include "io/hdf5/h5_util.h"

#ifndef DISTVAE_VERSION
#define DISTVAE_VERSION "unknown"
#endif

namespace distvae {

std::string cpu_model() {
  // The first CPU's "model name", with its family and model numbers: a virtual machine may name
  // only the maker ("AMD EPYC"), and the numbers still tell the generation (AMD family 25: Zen 3
  // and 4; 26: Zen 5).
  std::ifstream in("/proc/cpuinfo");
  std::string name, family, model;
  for (std::string line; std::getline(in, line) && !line.empty();) {  // "key\t: value"
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    const size_t start = line.find_first_not_of(" \t", colon + 1);
    const std::string v = start == std::string::npos ? "" : line.substr(start);
    if (key == "model name") name = v;
    if (key == "cpu family") family = v;
    if (key == "model") model = v;
  }
  if (name.empty()) return "unknown CPU";
  return family.empty() ? name : name + " (family " + family + ", model " + model + ")";
}

namespace {

std::string compiler() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "GCC " __VERSION__;
#else
  return "unknown compiler";
#endif
}

std::string code_generation() {
#if defined(DISTVAE_HAVE_ISA_CLONES)
  return "portable x86-64 (hot loops in AVX-512, AVX2 and baseline copies, chosen at load time)";
#elif defined(DISTVAE_NATIVE_BUILD)
  return "native (-march=native: needs a CPU with the build machine's instruction sets)";
#elif defined(DISTVAE_ARCH_BUILD)
  return "-march=" DISTVAE_ARCH_BUILD " (everything compiled for that level, -DDISTVAE_ARCH)";
#else
  return "compiler default target";
#endif
}

}  // namespace

std::string version_text() {
  std::string t = "distvae " DISTVAE_VERSION " (commit " + std::string(build_commit()) + ")\n";
  t += "build: " + compiler() + ", " + code_generation() + "\n";
  t += "cpu: " + cpu_model() + ", " + std::to_string(std::thread::hardware_concurrency()) +
       " logical CPUs; our loops run " + isa_clone_level() + "; oneDNN dispatches to " +
       dnnl_cpu_isa() + "\n";
  t += "libraries: oneDNN " + dnnl_library_version() + ", " + mpi_library_version() + ", HDF5 " +
       h5_library_version() + "\n";
  t += cuda_backend_built()
           ? "cuda: built in (the cuda backend and the NCCL communicator)"
           : "cuda: not built (configure with -DDISTVAE_CUDA=ON for the cuda backend and NCCL)";
  return t;
}

}  // namespace distvae
