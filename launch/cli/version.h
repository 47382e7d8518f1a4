// `distvae --version`: what was built (version, commit, compiler, portable or native, CUDA) and
// what this machine runs it with (the CPU, the ISA our loops and oneDNN's kernels use, MPI, HDF5).
#pragma once

#include <string>

namespace distvae {

// The git commit the binary was built from (generated at build time by
// launch/cli/build_info.cmake).
const char* build_commit();

// The CPU's model name from /proc/cpuinfo, e.g. "AMD EPYC 7B13".
std::string cpu_model();

// The lines `distvae --version` prints (no final newline).
std::string version_text();

}  // namespace distvae
