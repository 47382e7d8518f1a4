// make_backend: the one place a backend name from the config becomes a backend object, and the
// CUDA entry points of core/backends/cuda_status.h. A build without -DDISTVAE_CUDA=ON answers them
// here; a CUDA build (DISTVAE_HAVE_CUDA, set by CMakeLists.txt) forwards to core/backends/cuda/.
#include <memory>
#include <stdexcept>
#include <string>

#include "core/backend.h"
#include "core/backends/cuda_status.h"
#include "core/backends/dnnl.h"
#include "core/backends/reference.h"

#ifndef DISTVAE_HAVE_CUDA
#define DISTVAE_HAVE_CUDA 0
#endif
#if DISTVAE_HAVE_CUDA
#include "core/backends/cuda/entry.h"
#endif

namespace distvae {

bool cuda_backend_built() {
  return DISTVAE_HAVE_CUDA != 0;
}

int cuda_device_count(std::string* why) {
#if DISTVAE_HAVE_CUDA
  return cuda::device_count(why);
#else
  if (why) *why = "this distvae was built without CUDA (configure with -DDISTVAE_CUDA=ON)";
  return 0;
#endif
}

HostBufferAllocator host_buffer_allocator(const std::string& backend) {
#if DISTVAE_HAVE_CUDA
  if (backend == "cuda") return {&cuda::pinned_alloc, &cuda::pinned_free};
#else
  (void)backend;
#endif
  return {};
}

std::unique_ptr<Backend<float>> make_backend(const std::string& name) {
  if (name == "dnnl") return std::make_unique<DnnlBackend>();
  if (name == "reference") return std::make_unique<ReferenceBackend<float>>();
  if (name == "cuda") {
#if DISTVAE_HAVE_CUDA
    return cuda::make_backend();
#else
    throw std::runtime_error(
        "backend 'cuda': this distvae was built without CUDA; reconfigure with -DDISTVAE_CUDA=ON "
        "(see README.md, GPU) or use backend: dnnl");
#endif
  }
  throw std::runtime_error("unknown backend '" + name + "' (expected dnnl, reference or cuda)");
}

}  // namespace distvae
