// Counter-based random numbers: Philox4x32-10 and uniform / normal fills keyed by
// (seed, stream, element index), so a draw is a pure function of what it is for.
//
// Why counter-based: data-parallel training must give image i the same reparameterization noise
// and binarization whether 1 rank or 64 process it, and a resumed run must continue bitwise. With
// Philox there is no generator state to carry, split or checkpoint: element i of stream s under
// seed k is philox(counter = {i/4, s}, key = k) word i%4, computable by whoever needs it.
//
// Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
// SC11): a 128-bit counter is encrypted under a 64-bit key by 10 rounds of
//   (c0, c1, c2, c3) -> (hi(M1*c2) ^ c1 ^ k0, lo(M1*c2), hi(M0*c0) ^ c3 ^ k1, lo(M0*c0))
// with M0 = 0xD2511F53, M1 = 0xCD9E8D57 (64-bit products split in 32-bit halves), the key bumped by
// the Weyl increments (0x9E3779B9, 0xBB67AE85) between rounds. It passes BigCrush and matches the
// published known-answer vectors (tests/core/rng_test.cpp).
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "core/philox.h"

namespace distvae {

// ---- the block function ----

// One Philox4x32-10 block: four 32-bit words from a 128-bit counter and a 64-bit key. The block
// function itself lives in core/philox.h, shared with the GPU kernels.
inline std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter,
                                             std::array<uint32_t, 2> key) {
  const philox::Words out = philox::block_function(
      philox::Words{{counter[0], counter[1], counter[2], counter[3]}}, key[0], key[1]);
  return {out.w[0], out.w[1], out.w[2], out.w[3]};
}

// ---- keyed draws ----

// Block `block` of stream `stream` under `seed`: key = {lo(seed), hi(seed)},
// counter = {lo(block), hi(block), lo(stream), hi(stream)}. Element i of a stream is word i%4 of
// block i/4.
inline std::array<uint32_t, 4> random_block(uint64_t seed, uint64_t stream, uint64_t block) {
  const philox::Words out = philox::keyed_block(seed, stream, block);
  return {out.w[0], out.w[1], out.w[2], out.w[3]};
}

// Words [4 first_block, 4 (first_block + n)) of a stream into out (4 n words): the same numbers as
// random_block, written as one loop over independent blocks so the compiler can vectorize it.
inline void random_words(uint64_t seed, uint64_t stream, uint64_t first_block, size_t n,
                         uint32_t* out) {
  constexpr uint64_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  const uint32_t s0 = static_cast<uint32_t>(stream), s1 = static_cast<uint32_t>(stream >> 32);
  const uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (size_t j = 0; j < n; ++j) {
    const uint64_t block = first_block + j;
    uint32_t c0 = static_cast<uint32_t>(block), c1 = static_cast<uint32_t>(block >> 32);
    uint32_t c2 = s0, c3 = s1, key0 = k0, key1 = k1;
    for (int round = 0; round < 10; ++round) {
      const uint64_t p0 = M0 * c0, p1 = M1 * c2;
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ key0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ key1;
      c0 = n0, c1 = static_cast<uint32_t>(p1), c2 = n2, c3 = static_cast<uint32_t>(p0);
      key0 += W0, key1 += W1;
    }
    out[4 * j] = c0, out[4 * j + 1] = c1, out[4 * j + 2] = c2, out[4 * j + 3] = c3;
  }
}

// A 32-bit word u mapped to the open interval (0, 1): (u + 0.5) * 2^-32, in [2^-33, 1 - 2^-33].
// The midpoint offset keeps both ends out, so log(u) and log(1 - u) are always finite.
inline double uniform_from_word(uint32_t u) {
  return philox::uniform_from_word(u);
}

// The largest float below 1 (1 - 2^-24). A double in (1 - 2^-25, 1) rounds to 1.0f, so the float
// conversion clamps there; 2^-33 and above are normal floats, so the low end never rounds to 0.
inline float to_open_unit_float(double u) {
  return philox::to_open_unit_float(u);
}

// out[j] = uniform in the open interval (0, 1) for element offset + j of the stream, j < n.
template <class T>
void uniform_fill(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, T* out) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "float or double");
  size_t j = 0;
  while (j < n) {
    const uint64_t i = offset + j;  // element index in the stream
    const std::array<uint32_t, 4> w = random_block(seed, stream, i / 4);
    for (size_t word = i % 4; word < 4 && j < n; ++word, ++j) {
      const double u = uniform_from_word(w[word]);
      if constexpr (std::is_same_v<T, float>)
        out[j] = to_open_unit_float(u);
      else
        out[j] = u;
    }
  }
}

// out[j] = standard normal for element offset + j of the stream, j < n.
// Box-Muller in double on the word pairs (0, 1) and (2, 3) of a block, u = uniform_from_word(w):
//   r = sqrt(-2 log u_a),  z_a = r cos(2 pi u_b),  z_b = r sin(2 pi u_b).
// A block gives 4 normals and element i depends only on (seed, stream, i), so any split of
// [offset, offset + n) into calls gives the same numbers. Since u_a >= 2^-33 the radius is at most
// sqrt(-2 log 2^-33) = 6.76 (a true Rayleigh radius exceeds it with probability 2^-33), so
// |z| <= 6.76: harmless for reparameterization noise and prior samples.
template <class T>
void normal_fill(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, T* out) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "float or double");
  size_t j = 0;
  while (j < n) {
    const uint64_t i = offset + j;
    double z[4];
    philox::normals_from_block(philox::keyed_block(seed, stream, i / 4), z);
    for (size_t word = i % 4; word < 4 && j < n; ++word, ++j) out[j] = static_cast<T>(z[word]);
  }
}

// ---- naming streams ----

// What a stream of draws is for: the top 16 bits of a stream id. Append new purposes here, never
// renumber (that would change every run's numbers), and never reuse a value for two purposes.
namespace rng_purpose {
// The index meanings are the callers' to fix (and document there); the intent is noted.
constexpr uint32_t param_init = 1;      // per layer: initial weights
constexpr uint32_t reparam_noise = 2;   // per image use: eps of z = mu + sigma * eps
constexpr uint32_t binarize = 3;        // per image use: dynamic binarization
constexpr uint32_t prior_sample = 4;    // per global batch slot: z ~ N(0, I) for discriminators
constexpr uint32_t evaluation = 5;      // per test image: importance samples, AIS chains
constexpr uint32_t shuffle = 6;         // retired (the whole-set permutation before the shard plan)
constexpr uint32_t chunk_shuffle = 7;   // per epoch: the permutation of the dataset's chunks
constexpr uint32_t window_shuffle = 8;  // per (epoch, rank): images inside each window of chunks
constexpr uint32_t disc_q_noise = 9;    // per image use: eps of the discriminator's q(z|x) samples
constexpr uint32_t disc_p_sample = 10;  // per image use: the discriminator's z ~ N(0, I) samples
constexpr uint32_t gan_disc_noise = 11;  // per image use: z of the fakes shown to D
constexpr uint32_t gan_gen_noise = 12;   // per image use: z of the generator step
constexpr uint32_t ais = 13;             // per AIS chain: initial state, momenta, accept draws
constexpr uint32_t gan_disc_instance_noise = 14;  // per image use: D-step instance noise
constexpr uint32_t gan_gen_instance_noise = 15;   // per image use: G-step instance noise
constexpr uint32_t ais_marginal = 16;             // per (image, chain): AIS for log p(x), as ais
constexpr uint32_t bdmc = 17;                     // per simulated image: its z and x (BDMC)
constexpr uint32_t ais_pilot = 18;                // per (image, pilot chain): AIS step-size pilots
constexpr uint32_t pixel_sample = 19;  // per generated image: an autoregressive decoder's pixels
constexpr uint32_t test = 0xFFFF;      // tests only
}  // namespace rng_purpose

constexpr uint64_t kStreamIndexBits = 48;

// Stream id = purpose << 48 | index: purpose < 2^16, index < 2^48 (2.8e14, room for
// epoch * images_per_epoch + image). Keying by the image (or global batch slot), never by the rank,
// is what makes N ranks draw the same numbers as 1. Inside a stream the 64-bit element counter is
// free for the caller, e.g. (step within the image's use) * D + d.
inline uint64_t stream_id(uint32_t purpose, uint64_t index) {
  if (purpose >= (1u << 16))
    throw std::runtime_error("stream_id: purpose " + std::to_string(purpose) +
                             " does not fit in 16 bits; use a value from rng_purpose");
  if (index >= (uint64_t{1} << kStreamIndexBits))
    throw std::runtime_error("stream_id: index " + std::to_string(index) +
                             " does not fit in 48 bits; fold large indices into the element "
                             "counter instead");
  return (static_cast<uint64_t>(purpose) << kStreamIndexBits) | index;
}

}  // namespace distvae
