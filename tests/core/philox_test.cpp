// Host compilation of core/philox.h, the Philox code the GPU kernels compile too: the published
// known answers, and bit-for-bit agreement with the host implementation it replaced (kept below as
// a frozen copy) and with core/rng.h's separately written vectorized loop. The device side of the
// same comparison is tests/cuda/philox_device_test.cpp.
#include "core/philox.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/rng.h"

namespace distvae {
namespace {

// ---- the pre-refactor host implementation (core/rng.h before core/philox.h), frozen ----

std::array<uint32_t, 4> frozen_philox(std::array<uint32_t, 4> counter,
                                      std::array<uint32_t, 2> key) {
  constexpr uint64_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += W0;
      key[1] += W1;
    }
    const uint64_t p0 = M0 * counter[0];
    const uint64_t p1 = M1 * counter[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    counter = {hi1 ^ counter[1] ^ key[0], lo1, hi0 ^ counter[3] ^ key[1], lo0};
  }
  return counter;
}

std::array<uint32_t, 4> frozen_block(uint64_t seed, uint64_t stream, uint64_t block) {
  return frozen_philox({static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                        static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)},
                       {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
}

double frozen_uniform(uint32_t u) {
  return (static_cast<double>(u) + 0.5) * 0x1p-32;
}

float frozen_float(double u) {
  constexpr float kBelowOne = 1.0f - 0x1p-24f;
  const float f = static_cast<float>(u);
  return f < kBelowOne ? f : kBelowOne;
}

double frozen_normal(uint64_t seed, uint64_t stream, uint64_t i) {
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  const std::array<uint32_t, 4> w = frozen_block(seed, stream, i / 4);
  double z[4];
  for (int pair = 0; pair < 2; ++pair) {
    const double r = std::sqrt(-2.0 * std::log(frozen_uniform(w[size_t(2 * pair)])));
    const double theta = kTwoPi * frozen_uniform(w[size_t(2 * pair + 1)]);
    z[2 * pair] = r * std::cos(theta);
    z[2 * pair + 1] = r * std::sin(theta);
  }
  return z[i % 4];
}

bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

// Seeds, streams and counters that exercise both 32-bit halves of each.
struct Key3 {
  uint64_t seed, stream, first;
};
const Key3 kKeys[] = {
    {0, 0, 0},
    {2024, stream_id(rng_purpose::reparam_noise, 7), 3},
    {0xFFFFFFFFFFFFFFFFull, 0xFFFFFFFF00000001ull, 0xFFFFFFFFFFFFFF00ull},
    {0x0123456789ABCDEFull, stream_id(rng_purpose::test, (1ull << 48) - 1), 0x00000001FFFFFFF0ull}};

// An element index near k.first / 4 whose next few thousand elements do not wrap around 2^64.
uint64_t element_base(const Key3& k) {
  return k.first >> 2;
}

// ---- known answers ----

TEST(PhiloxShared, KnownAnswerVectors) {
  std::ifstream in(std::string(DISTVAE_TESTDATA) + "/philox4x32_10_kat.txt");
  ASSERT_TRUE(in) << "cannot open the known-answer file in " << DISTVAE_TESTDATA;
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    std::istringstream ls(line);
    ls >> std::hex;
    philox::Words counter{}, expected{};
    uint32_t k0 = 0, k1 = 0;
    for (uint32_t& w : counter.w) ls >> w;
    ls >> k0 >> k1;
    for (uint32_t& w : expected.w) ls >> w;
    ASSERT_TRUE(ls) << "malformed line: " << line;
    const philox::Words got = philox::block_function(counter, k0, k1);
    for (int w = 0; w < 4; ++w) EXPECT_EQ(got.w[w], expected.w[w]) << line << " word " << w;
    ++checked;
  }
  EXPECT_GE(checked, 3);
}

// ---- against the frozen pre-refactor implementation ----

TEST(PhiloxShared, WordsMatchThePreviousHostImplementation) {
  for (const Key3& k : kKeys)
    for (uint64_t b = k.first; b < k.first + 256; ++b) {
      const philox::Words got = philox::keyed_block(k.seed, k.stream, b);
      const std::array<uint32_t, 4> want = frozen_block(k.seed, k.stream, b);
      for (int w = 0; w < 4; ++w)
        ASSERT_EQ(got.w[w], want[size_t(w)]) << "seed " << k.seed << " block " << b;
    }
}

TEST(PhiloxShared, UniformsAndNormalsMatchThePreviousHostImplementationBitForBit) {
  for (const Key3& k : kKeys)
    for (uint64_t i = element_base(k); i < element_base(k) + 4096; ++i) {
      const double u = philox::uniform_element(k.seed, k.stream, i);
      const double u_want = frozen_uniform(frozen_block(k.seed, k.stream, i / 4)[i % 4]);
      ASSERT_TRUE(same_bits(u, u_want)) << "uniform element " << i;
      ASSERT_EQ(philox::to_open_unit_float(u), frozen_float(u_want)) << "uniform element " << i;
      const double z = philox::normal_element(k.seed, k.stream, i);
      ASSERT_TRUE(same_bits(z, frozen_normal(k.seed, k.stream, i))) << "normal element " << i;
    }
}

// The whole-word range ends: the open interval holds in both precisions.
TEST(PhiloxShared, UniformEndsStayInsideTheOpenInterval) {
  for (uint32_t u : {0u, 1u, 0xFFFFFFFEu, 0xFFFFFFFFu}) {
    const double d = philox::uniform_from_word(u);
    EXPECT_GT(d, 0.0);
    EXPECT_LT(d, 1.0);
    EXPECT_GT(philox::to_open_unit_float(d), 0.0f);
    EXPECT_LT(philox::to_open_unit_float(d), 1.0f);
  }
}

// ---- against core/rng.h (its fills use the shared code; random_words is its own loop) ----

TEST(PhiloxShared, AgreesWithTheVectorizedHostLoop) {
  for (const Key3& k : kKeys) {
    std::vector<uint32_t> words(4 * 100);
    random_words(k.seed, k.stream, k.first, 100, words.data());
    for (uint64_t j = 0; j < 100; ++j) {
      const philox::Words b = philox::keyed_block(k.seed, k.stream, k.first + j);
      for (int w = 0; w < 4; ++w) ASSERT_EQ(b.w[w], words[4 * j + uint64_t(w)]) << "block " << j;
    }
  }
}

TEST(PhiloxShared, ElementFunctionsGiveTheHostFills) {
  // Odd offsets and lengths: the fills start and end inside a block.
  for (const Key3& k : kKeys) {
    const uint64_t offset = element_base(k) + 3;
    const size_t n = 1001;
    std::vector<float> uf(n), nf(n);
    std::vector<double> ud(n), nd(n);
    uniform_fill(k.seed, k.stream, offset, n, uf.data());
    uniform_fill(k.seed, k.stream, offset, n, ud.data());
    normal_fill(k.seed, k.stream, offset, n, nf.data());
    normal_fill(k.seed, k.stream, offset, n, nd.data());
    for (size_t j = 0; j < n; ++j) {
      const double u = philox::uniform_element(k.seed, k.stream, offset + j);
      const double z = philox::normal_element(k.seed, k.stream, offset + j);
      ASSERT_TRUE(same_bits(ud[j], u)) << j;
      ASSERT_EQ(uf[j], philox::to_open_unit_float(u)) << j;
      ASSERT_TRUE(same_bits(nd[j], z)) << j;
      ASSERT_EQ(nf[j], static_cast<float>(z)) << j;
    }
  }
}

}  // namespace
}  // namespace distvae
