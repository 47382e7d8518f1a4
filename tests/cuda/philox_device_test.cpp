// Philox on the device against the host (core/rng.h), both from core/philox.h: the same words and
// uniforms bit for bit, and the same normals up to the last bit of the math libraries' log, cos
// and sin (at most one float ulp; in practice nearly always identical).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/backends/cuda/philox_fill.h"
#include "core/rng.h"
#include "tests/cuda/cuda_skip.h"

namespace distvae {
namespace {

// Device memory for n values of T, copied back on request; errors fail the test.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)), cudaSuccess);
  }
  ~DeviceArray() { cudaFree(p_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() { return p_; }
  std::vector<T> host() {
    std::vector<T> h(n_);
    EXPECT_EQ(cudaStreamSynchronize(cudaStreamPerThread), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }

 private:
  size_t n_;
  T* p_ = nullptr;
};

struct Key3 {
  uint64_t seed, stream, offset;
};
// Offsets inside a block (3), across the 32-bit block counter boundary, and large streams.
const Key3 kKeys[] = {{0, 0, 0},
                      {2024, stream_id(rng_purpose::reparam_noise, 7), 3},
                      {0xFFFFFFFFFFFFFFFFull, stream_id(rng_purpose::test, 0xFFFFFFFFFFFFull),
                       (uint64_t{1} << 34) - 5},
                      {0x0123456789ABCDEFull, 0xFEDCBA9876543210ull, 1001}};
constexpr size_t kN = 100003;  // not a multiple of 4, more than one grid-stride pass for words

TEST(PhiloxDevice, WordsMatchTheHostBitForBit) {
  SKIP_WITHOUT_CUDA_DEVICE();
  for (const Key3& k : kKeys) {
    DeviceArray<uint32_t> d(4 * kN);
    cuda::random_words(k.seed, k.stream, k.offset, kN, d.get(), cudaStreamPerThread);
    std::vector<uint32_t> want(4 * kN);
    random_words(k.seed, k.stream, k.offset, kN, want.data());
    EXPECT_EQ(d.host(), want) << "seed " << k.seed;
  }
}

TEST(PhiloxDevice, UniformsMatchTheHostBitForBit) {
  SKIP_WITHOUT_CUDA_DEVICE();
  for (const Key3& k : kKeys) {
    DeviceArray<float> f(kN);
    DeviceArray<double> d(kN);
    cuda::uniform_fill(k.seed, k.stream, k.offset, kN, f.get(), cudaStreamPerThread);
    cuda::uniform_fill(k.seed, k.stream, k.offset, kN, d.get(), cudaStreamPerThread);
    std::vector<float> wf(kN);
    std::vector<double> wd(kN);
    uniform_fill(k.seed, k.stream, k.offset, kN, wf.data());
    uniform_fill(k.seed, k.stream, k.offset, kN, wd.data());
    const std::vector<float> gf = f.host();
    const std::vector<double> gd = d.host();
    EXPECT_EQ(std::memcmp(gf.data(), wf.data(), kN * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(gd.data(), wd.data(), kN * sizeof(double)), 0);
  }
}

TEST(PhiloxDevice, NormalsMatchTheHostToTheLastFloatBit) {
  SKIP_WITHOUT_CUDA_DEVICE();
  size_t identical = 0, total = 0;
  for (const Key3& k : kKeys) {
    DeviceArray<float> f(kN);
    DeviceArray<double> d(kN);
    cuda::normal_fill(k.seed, k.stream, k.offset, kN, f.get(), cudaStreamPerThread);
    cuda::normal_fill(k.seed, k.stream, k.offset, kN, d.get(), cudaStreamPerThread);
    std::vector<float> wf(kN);
    std::vector<double> wd(kN);
    normal_fill(k.seed, k.stream, k.offset, kN, wf.data());
    normal_fill(k.seed, k.stream, k.offset, kN, wd.data());
    const std::vector<float> gf = f.host();
    const std::vector<double> gd = d.host();
    for (size_t i = 0; i < kN; ++i) {
      // one float ulp of the value; a few double ulps (CUDA's sin/cos/log: <= 2 ulp each)
      ASSERT_LE(std::abs(gf[i] - wf[i]),
                std::nextafter(std::abs(wf[i]), INFINITY) - std::abs(wf[i]))
          << "float element " << i;
      ASSERT_LE(std::abs(gd[i] - wd[i]), 1e-14 * std::max(1.0, std::abs(wd[i])))
          << "double element " << i;
      identical += gf[i] == wf[i];
      ++total;
    }
  }
  // Differences are rare rounding-boundary cases, not a systematic offset.
  EXPECT_GE(double(identical), 0.999 * double(total));
}

}  // namespace
}  // namespace distvae
