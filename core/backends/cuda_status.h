// What every build knows about the CUDA backend, without CUDA headers: whether it was built, how
// many devices this process can use, and page-locked host memory for upload buffers. Defined in
// core/backends/make_backend.cpp, which forwards to core/backends/cuda/ in a -DDISTVAE_CUDA=ON
// build and answers "not built" otherwise, so callers need no #ifdef. make_backend("cuda") creates
// the backend.
#pragma once

#include <cstddef>
#include <string>

namespace distvae {

// True when this binary was configured with -DDISTVAE_CUDA=ON.
bool cuda_backend_built();

// CUDA devices this process can use. 0 when the build has no CUDA, when the node has no NVIDIA
// driver (cudaGetDeviceCount's "CUDA driver version is insufficient for CUDA runtime version") or
// no GPU; *why (if given) then says which. Never throws.
int cuda_device_count(std::string* why = nullptr);

// Where host buffers that are uploaded every step (the loader's batch ring) come from for a
// backend: page-locked memory for "cuda" (the DMA engine reads it directly, no staging copy),
// both null (plain heap memory) for the CPU backends. alloc throws std::bad_alloc on failure.
struct HostBufferAllocator {
  float* (*alloc)(size_t floats) = nullptr;
  void (*free)(float* p) = nullptr;
};
HostBufferAllocator host_buffer_allocator(const std::string& backend);

}  // namespace distvae
