#include "core/backends/isa_clones.h"

namespace distvae {

const char* isa_clone_level() {
#if !defined(DISTVAE_HAVE_ISA_CLONES)
  return "this build's own target (built with -DDISTVAE_NATIVE=ON or -DDISTVAE_ARCH, or a "
         "compiler without target_clones)";
#else
  // The order of GCC's resolver: the most capable clone the CPU supports.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4 (AVX-512)";
  if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3 (AVX2, FMA)";
  return "x86-64 baseline (SSE2)";
#endif
}

}  // namespace distvae
