// Philox draws on the device: one thread per 4-word block, each writing the elements of its block
// that fall inside [offset, offset + n), so a block's Box-Muller pair is computed once.
#include <type_traits>

#include "core/backends/cuda/check.h"
#include "core/backends/cuda/device_math.cuh"
#include "core/backends/cuda/philox_fill.h"
#include "core/philox.h"

namespace distvae::cuda {

namespace {

__global__ void words_kernel(uint64_t seed, uint64_t stream, uint64_t first_block, size_t n_blocks,
                             uint32_t* out) {
  const size_t step = size_t(gridDim.x) * blockDim.x;
  for (size_t j = size_t(blockIdx.x) * blockDim.x + threadIdx.x; j < n_blocks; j += step) {
    const philox::Words w = philox::keyed_block(seed, stream, first_block + j);
    for (int k = 0; k < 4; ++k) out[4 * j + size_t(k)] = w.w[k];
  }
}

template <bool kNormal, class T>
__global__ void fill_kernel(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, T* out) {
  const uint64_t first_block = offset / 4, end = offset + n;
  const size_t blocks = size_t((end + 3) / 4 - first_block);
  const size_t step = size_t(gridDim.x) * blockDim.x;
  for (size_t j = size_t(blockIdx.x) * blockDim.x + threadIdx.x; j < blocks; j += step) {
    const uint64_t block = first_block + j;
    const philox::Words w = philox::keyed_block(seed, stream, block);
    double v[4];
    if constexpr (kNormal) {
      philox::normals_from_block(w, v);
    } else {
      for (int k = 0; k < 4; ++k) v[k] = philox::uniform_from_word(w.w[k]);
    }
    for (int k = 0; k < 4; ++k) {
      const uint64_t i = 4 * block + uint64_t(k);  // element index in the stream
      if (i < offset || i >= end) continue;
      T value;
      if constexpr (!kNormal && std::is_same_v<T, float>)
        value = philox::to_open_unit_float(v[k]);
      else
        value = static_cast<T>(v[k]);
      out[i - offset] = value;
    }
  }
}

template <bool kNormal, class T>
void launch_fill(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, T* out,
                 cudaStream_t s) {
  if (n == 0) return;
  const size_t blocks = size_t((offset + n + 3) / 4 - offset / 4);
  fill_kernel<kNormal, T>
      <<<elementwise_blocks(blocks), kThreads, 0, s>>>(seed, stream, offset, n, out);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

}  // namespace

void random_words(uint64_t seed, uint64_t stream, uint64_t first_block, size_t n_blocks,
                  uint32_t* out, cudaStream_t s) {
  if (n_blocks == 0) return;
  words_kernel<<<elementwise_blocks(n_blocks), kThreads, 0, s>>>(seed, stream, first_block,
                                                                 n_blocks, out);
  DISTVAE_CUDA_CHECK_LAUNCH();
}

void uniform_fill(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float* out,
                  cudaStream_t s) {
  launch_fill<false>(seed, stream, offset, n, out, s);
}
void uniform_fill(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, double* out,
                  cudaStream_t s) {
  launch_fill<false>(seed, stream, offset, n, out, s);
}
void normal_fill(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float* out,
                 cudaStream_t s) {
  launch_fill<true>(seed, stream, offset, n, out, s);
}
void normal_fill(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, double* out,
                 cudaStream_t s) {
  launch_fill<true>(seed, stream, offset, n, out, s);
}

}  // namespace distvae::cuda
