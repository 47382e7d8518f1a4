// Counter-based draws computed on the GPU: the device twins of core/rng.h's uniform_fill and
// normal_fill, from the same core/philox.h code, so element i of stream s under seed k is the same
// number on either side (words and uniforms bit for bit; normals to the last bit of the math
// library's log/cos/sin, see core/philox.h). Outputs are device memory; the launch is enqueued on
// `s` and returns at once.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace distvae::cuda {

// out[4 j + w] = word w of block first_block + j, j < n_blocks (core/rng.h random_words).
void random_words(uint64_t seed, uint64_t stream, uint64_t first_block, size_t n_blocks,
                  uint32_t* out, cudaStream_t s);
// out[j] = element offset + j of the stream as a uniform in (0, 1), j < n.
void uniform_fill(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float* out,
                  cudaStream_t s);
void uniform_fill(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, double* out,
                  cudaStream_t s);
// out[j] = element offset + j of the stream as a standard normal, j < n.
void normal_fill(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float* out,
                 cudaStream_t s);
void normal_fill(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, double* out,
                 cudaStream_t s);

}  // namespace distvae::cuda
