// The CUDA build's implementations behind core/backends/cuda_status.h and make_backend("cuda");
// only core/backends/make_backend.cpp and CUDA-specific tests include this header.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "core/backend.h"

namespace distvae::cuda {

// See distvae::cuda_device_count.
int device_count(std::string* why);

// The CUDA backend on the calling thread's current device. Throws std::runtime_error naming the
// reason when no device is usable.
std::unique_ptr<Backend<float>> make_backend();

// Page-locked host memory (cudaHostAlloc); pinned_free(nullptr) is a no-op.
float* pinned_alloc(size_t floats);
void pinned_free(float* p);

}  // namespace distvae::cuda
