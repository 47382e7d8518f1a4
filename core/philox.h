// Philox4x32-10 and the draws built on it, written once for host and device: core/rng.h (CPU)
// and core/backends/cuda/kernels_philox.cu (GPU) call these same functions, so a draw is the same
// number wherever it is computed: element i of stream s under seed k is word i % 4 of block i / 4.
//
// Plain C++ with no standard-library types in the signatures (std::array is not usable in device
// code): compiled by nvcc, DISTVAE_HD marks the functions __host__ __device__; compiled by a host
// compiler it is just `inline`. The algorithm and its constants are documented in core/rng.h.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define DISTVAE_HD __host__ __device__ __forceinline__
#else
#define DISTVAE_HD inline
#endif

namespace distvae::philox {

// Four 32-bit words: a counter going in, a random block coming out.
struct Words {
  uint32_t w[4];
};

// One Philox4x32-10 block: `counter` encrypted under the 64-bit key {k0, k1}.
DISTVAE_HD Words block_function(Words counter, uint32_t k0, uint32_t k1) {
  constexpr uint64_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  uint32_t c0 = counter.w[0], c1 = counter.w[1], c2 = counter.w[2], c3 = counter.w[3];
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {  // the key schedule: k += W before every round but the first
      k0 += W0;
      k1 += W1;
    }
    const uint64_t p0 = M0 * c0;  // 32 x 32 -> 64-bit product, exact in uint64_t
    const uint64_t p1 = M1 * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
  }
  return Words{{c0, c1, c2, c3}};
}

// Block `block` of stream `stream` under `seed`: key = {lo(seed), hi(seed)},
// counter = {lo(block), hi(block), lo(stream), hi(stream)}.
DISTVAE_HD Words keyed_block(uint64_t seed, uint64_t stream, uint64_t block) {
  return block_function(Words{{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                               static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)}},
                        static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// A 32-bit word mapped to the open interval (0, 1): (u + 0.5) * 2^-32, in [2^-33, 1 - 2^-33].
// Exact in double, so host and device agree bit for bit.
DISTVAE_HD double uniform_from_word(uint32_t u) {
  return (static_cast<double>(u) + 0.5) * 0x1p-32;
}

// The float nearest u, clamped to the largest float below 1 (1 - 2^-24): a double in
// (1 - 2^-25, 1) would round to 1.0f. IEEE round-to-nearest on both sides: exact agreement.
DISTVAE_HD float to_open_unit_float(double u) {
  constexpr float kBelowOne = 1.0f - 0x1p-24f;
  const float f = static_cast<float>(u);
  return f < kBelowOne ? f : kBelowOne;
}

// The four standard normals of one block, Box-Muller in double on the word pairs (0, 1), (2, 3):
//   r = sqrt(-2 log u_a),  z_a = r cos(2 pi u_b),  z_b = r sin(2 pi u_b).
// sqrt and the products are IEEE-exact everywhere; log, cos and sin come from the platform's math
// library (glibc on the host, CUDA's libdevice on the GPU), which agree to a few units in the last
// place of a double, so the float draws agree except, rarely, by one float ulp.
DISTVAE_HD void normals_from_block(Words w, double z[4]) {
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  for (int pair = 0; pair < 2; ++pair) {
    // The global double functions: the C library's on the host (what std:: names for double),
    // CUDA's device functions of the same names on the GPU.
    const double r = ::sqrt(-2.0 * ::log(uniform_from_word(w.w[2 * pair])));
    const double theta = kTwoPi * uniform_from_word(w.w[2 * pair + 1]);
    z[2 * pair] = r * ::cos(theta);
    z[2 * pair + 1] = r * ::sin(theta);
  }
}

// Element i of a stream as a uniform in (0, 1) / a standard normal (double; callers convert).
// One element at a time is what a GPU thread computes; host loops reuse whole blocks instead.
DISTVAE_HD double uniform_element(uint64_t seed, uint64_t stream, uint64_t i) {
  return uniform_from_word(keyed_block(seed, stream, i / 4).w[i % 4]);
}

DISTVAE_HD double normal_element(uint64_t seed, uint64_t stream, uint64_t i) {
  double z[4];
  normals_from_block(keyed_block(seed, stream, i / 4), z);
  return z[i % 4];
}

}  // namespace distvae::philox
