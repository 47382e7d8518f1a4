// Tests for core/rng.h: Philox known answers, the moments of uniform and normal draws, and that a
// draw depends only on (seed, stream, element index).
#include "core/rng.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace distvae {
namespace {

struct Kat {
  std::array<uint32_t, 4> counter;
  std::array<uint32_t, 2> key;
  std::array<uint32_t, 4> expected;
};

// Parses "counter[4] key[2] output[4]" hex lines, skipping blank lines and '#' comments.
std::vector<Kat> read_kats(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<Kat> kats;
  std::string line;
  while (std::getline(in, line)) {
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    std::istringstream ls(line);
    ls >> std::hex;
    Kat k{};
    for (auto& w : k.counter) ls >> w;
    for (auto& w : k.key) ls >> w;
    for (auto& w : k.expected) ls >> w;
    if (!ls) throw std::runtime_error("malformed known-answer line in " + path + ": " + line);
    kats.push_back(k);
  }
  return kats;
}

TEST(Philox, KnownAnswerVectors) {
  const std::vector<Kat> kats = read_kats(std::string(DISTVAE_TESTDATA) + "/philox4x32_10_kat.txt");
  ASSERT_GE(kats.size(), 3u);
  for (const Kat& k : kats) {
    const std::array<uint32_t, 4> got = philox4x32_10(k.counter, k.key);
    for (int w = 0; w < 4; ++w)
      EXPECT_EQ(got[static_cast<size_t>(w)], k.expected[static_cast<size_t>(w)])
          << "counter " << std::hex << k.counter[0] << " word " << w;
  }
}

// The keyed draw is the block function on the documented counter and key layout.
TEST(Rng, BlockLayout) {
  const uint64_t seed = 0x0123456789ABCDEFull, stream = 0xFEDCBA9876543210ull,
                 block = 0x1122334455667788ull;
  EXPECT_EQ(random_block(seed, stream, block),
            philox4x32_10({0x55667788u, 0x11223344u, 0x76543210u, 0xFEDCBA98u},
                          {0x89ABCDEFu, 0x01234567u}));
}

// Sample mean, variance and excess kurtosis of n values, accumulated in double.
struct Moments {
  double mean = 0, var = 0, kurt = 0;
};
template <class T>
Moments moments(const std::vector<T>& x) {
  const double n = static_cast<double>(x.size());
  double s = 0;
  for (T v : x) s += v;
  Moments m;
  m.mean = s / n;
  double m2 = 0, m4 = 0;
  for (T v : x) {
    const double d = v - m.mean;
    m2 += d * d;
    m4 += d * d * d * d;
  }
  m2 /= n;
  m4 /= n;
  m.var = m2;
  m.kurt = m4 / (m2 * m2) - 3.0;
  return m;
}

template <class T>
void check_normal_moments(uint64_t seed, uint64_t stream) {
  const size_t n = 1000000;
  std::vector<T> z(n);
  normal_fill(seed, stream, 0, n, z.data());
  const Moments m = moments(z);
  const double nd = static_cast<double>(n);
  // Standard errors for N(0, 1): mean 1/sqrt(n), variance sqrt(2/n), excess kurtosis sqrt(24/n).
  EXPECT_NEAR(m.mean, 0.0, 5.0 / std::sqrt(nd));
  EXPECT_NEAR(m.var, 1.0, 5.0 * std::sqrt(2.0 / nd));
  EXPECT_NEAR(m.kurt, 0.0, 5.0 * std::sqrt(24.0 / nd));
}

TEST(Rng, NormalMomentsDouble) {
  check_normal_moments<double>(42, stream_id(rng_purpose::test, 1));
}
TEST(Rng, NormalMomentsFloat) {
  check_normal_moments<float>(7, stream_id(rng_purpose::test, 2));
}

template <class T>
void check_uniform_moments(uint64_t seed, uint64_t stream) {
  const size_t n = 1000000;
  std::vector<T> u(n);
  uniform_fill(seed, stream, 0, n, u.data());
  for (T v : u) {
    ASSERT_GT(v, T(0));
    ASSERT_LT(v, T(1));
  }
  const Moments m = moments(u);
  const double nd = static_cast<double>(n);
  // U(0, 1): mean 1/2 with variance 1/12; variance 1/12 with Var(s^2) ~ (mu4 - sigma^4)/n,
  // mu4 = 1/80, so SE = sqrt((1/80 - 1/144)/n).
  EXPECT_NEAR(m.mean, 0.5, 5.0 * std::sqrt(1.0 / 12.0 / nd));
  EXPECT_NEAR(m.var, 1.0 / 12.0, 5.0 * std::sqrt((1.0 / 80.0 - 1.0 / 144.0) / nd));
}

TEST(Rng, UniformMomentsDouble) {
  check_uniform_moments<double>(1, stream_id(rng_purpose::test, 3));
}
TEST(Rng, UniformMomentsFloat) {
  check_uniform_moments<float>(2, stream_id(rng_purpose::test, 4));
}

// The extreme words map strictly inside (0, 1), in float too.
TEST(Rng, UniformOpenInterval) {
  EXPECT_GT(uniform_from_word(0u), 0.0);
  EXPECT_LT(uniform_from_word(0xFFFFFFFFu), 1.0);
  EXPECT_GT(to_open_unit_float(uniform_from_word(0u)), 0.0f);
  EXPECT_LT(to_open_unit_float(uniform_from_word(0xFFFFFFFFu)), 1.0f);
  EXPECT_LT(to_open_unit_float(uniform_from_word(0xFFFFFFFEu)), 1.0f);
}

template <class T>
void check_split_calls(bool normal) {
  const uint64_t seed = 1234, stream = stream_id(rng_purpose::reparam_noise, 17);
  auto fill = [&](uint64_t offset, size_t n, T* out) {
    if (normal)
      normal_fill(seed, stream, offset, n, out);
    else
      uniform_fill(seed, stream, offset, n, out);
  };
  std::vector<T> once(100), again(100), split(100), shifted(50);
  fill(0, 100, once.data());
  fill(0, 100, again.data());
  fill(0, 37, split.data());
  fill(37, 63, split.data() + 37);
  fill(50, 50, shifted.data());
  for (size_t i = 0; i < 100; ++i) {
    EXPECT_EQ(once[i], again[i]) << i;
    EXPECT_EQ(once[i], split[i]) << i;
  }
  for (size_t i = 0; i < 50; ++i) EXPECT_EQ(once[50 + i], shifted[i]) << i;
  // One element at a time, at unaligned offsets, still agrees.
  for (uint64_t i : {0u, 1u, 3u, 5u, 38u, 99u}) {
    T one;
    fill(i, 1, &one);
    EXPECT_EQ(one, once[i]) << i;
  }
}

TEST(Rng, DeterministicAcrossSplitCallsNormal) {
  check_split_calls<float>(true);
  check_split_calls<double>(true);
}
TEST(Rng, DeterministicAcrossSplitCallsUniform) {
  check_split_calls<float>(false);
  check_split_calls<double>(false);
}

// Float draws are the double draws rounded.
TEST(Rng, FloatIsRoundedDouble) {
  std::vector<float> f(64);
  std::vector<double> d(64);
  normal_fill(9, 3, 5, 64, f.data());
  normal_fill(9, 3, 5, 64, d.data());
  for (size_t i = 0; i < 64; ++i) EXPECT_EQ(f[i], static_cast<float>(d[i])) << i;
}

TEST(Rng, DifferentStreamsAndSeedsDiffer) {
  const size_t n = 64;
  std::vector<double> a(n), b(n), c(n), d(n);
  normal_fill(5, stream_id(rng_purpose::reparam_noise, 0), 0, n, a.data());
  normal_fill(5, stream_id(rng_purpose::reparam_noise, 1), 0, n, b.data());
  normal_fill(5, stream_id(rng_purpose::binarize, 0), 0, n, c.data());
  normal_fill(6, stream_id(rng_purpose::reparam_noise, 0), 0, n, d.data());
  size_t same_ab = 0, same_ac = 0, same_ad = 0;
  for (size_t i = 0; i < n; ++i) {
    same_ab += a[i] == b[i];
    same_ac += a[i] == c[i];
    same_ad += a[i] == d[i];
  }
  EXPECT_EQ(same_ab, 0u);
  EXPECT_EQ(same_ac, 0u);
  EXPECT_EQ(same_ad, 0u);
}

TEST(Rng, StreamIdLayoutAndRangeChecks) {
  EXPECT_EQ(stream_id(3, 5), (uint64_t{3} << 48) | 5);
  EXPECT_EQ(stream_id(0xFFFF, (uint64_t{1} << 48) - 1), ~uint64_t{0});
  EXPECT_NE(stream_id(1, 0), stream_id(2, 0));
  EXPECT_THROW(stream_id(1u << 16, 0), std::runtime_error);
  EXPECT_THROW(stream_id(1, uint64_t{1} << 48), std::runtime_error);
}

}  // namespace
}  // namespace distvae

namespace distvae {
namespace {

// The batched block loop gives exactly the words of the one-block function.
TEST(Rng, RandomWordsEqualRandomBlock) {
  const uint64_t seed = 0x243F6A8885A308D3ull, stream = stream_id(rng_purpose::binarize, 77);
  for (uint64_t first : {uint64_t{0}, uint64_t{5}, (uint64_t{1} << 32) - 2}) {
    std::vector<uint32_t> words(4 * 9);
    random_words(seed, stream, first, 9, words.data());
    for (uint64_t j = 0; j < 9; ++j) {
      const auto b = random_block(seed, stream, first + j);
      for (int t = 0; t < 4; ++t) EXPECT_EQ(words[size_t(4 * j + t)], b[size_t(t)]) << first + j;
    }
  }
}

}  // namespace
}  // namespace distvae
