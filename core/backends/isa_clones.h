// DISTVAE_ISA_CLONES: compile a hot loop for several x86-64 levels and pick one when the program
// loads. The build is portable by default (the compiler's x86-64 baseline, no -march=native), so a
// binary built on a login node runs on compute nodes of an older CPU; oneDNN already dispatches
// its own kernels at run time, and this does the same for our elementwise, objective and optimizer
// loops, which at the SSE2 baseline made the MLP VAE's step 15% slower. GCC emits one copy per
// target and an ifunc resolver that chooses by cpuid (x86-64-v4: AVX-512; v3: AVX2 + FMA).
// CMake defines DISTVAE_HAVE_ISA_CLONES where the compiler supports it and the build is not
// -DDISTVAE_NATIVE=ON (a native build already uses the widest ISA of the build machine).
#pragma once

#if defined(DISTVAE_HAVE_ISA_CLONES)
#define DISTVAE_ISA_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DISTVAE_ISA_CLONES
#endif

namespace distvae {

// Which copy of the DISTVAE_ISA_CLONES loops this CPU runs, e.g. "x86-64-v4 (AVX-512)".
const char* isa_clone_level();

}  // namespace distvae
