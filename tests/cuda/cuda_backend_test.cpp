// The CUDA backend beyond the all-backend parity tests (tests/core/backends/*_test.cpp): device
// discovery without a driver, the factory's errors, plan caching, bitwise determinism of the
// reductions and convolutions, geometry errors, and the pinned host allocator.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/backends/cuda/backend_cuda.h"
#include "core/backends/cuda_status.h"
#include "core/rng.h"
#include "tests/core/backends/backend_list.h"
#include "tests/cuda/cuda_skip.h"

namespace distvae {
namespace {

std::vector<float> normals(uint64_t key, size_t n) {
  std::vector<float> v(n);
  normal_fill(uint64_t{99}, stream_id(rng_purpose::test, key), 0, n, v.data());
  return v;
}

// Runs on every machine: no device is a state the build reports, not an error or a crash.
TEST(CudaDevice, CountAndFactoryAgree) {
  ASSERT_TRUE(cuda_backend_built());
  std::string why;
  const int n = cuda_device_count(&why);
  ASSERT_GE(n, 0);
  if (n > 0) {
    EXPECT_EQ(make_backend("cuda")->name(), "cuda");
    return;
  }
  EXPECT_FALSE(why.empty());
  try {
    make_backend("cuda");
    FAIL() << "make_backend(\"cuda\") without a device must throw";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("no CUDA device"), std::string::npos) << msg;
    EXPECT_NE(msg.find(why), std::string::npos) << msg;
  }
}

TEST(CudaDevice, HostBufferAllocatorIsPinnedOnlyForCuda) {
  EXPECT_EQ(host_buffer_allocator("dnnl").alloc, nullptr);
  EXPECT_EQ(host_buffer_allocator("reference").alloc, nullptr);
  const HostBufferAllocator a = host_buffer_allocator("cuda");
  ASSERT_NE(a.alloc, nullptr);
  ASSERT_NE(a.free, nullptr);
  SKIP_WITHOUT_CUDA_DEVICE();  // page-locking needs the driver
  float* p = a.alloc(1 << 20);
  ASSERT_NE(p, nullptr);
  p[0] = 1.0f, p[(1 << 20) - 1] = 2.0f;  // host-addressable
  EXPECT_EQ(p[0] + p[(1 << 20) - 1], 3.0f);
  a.free(p);
}

TEST(CudaBackendTest, RepeatedShapesReuseTheirPlans) {
  SKIP_WITHOUT_CUDA_DEVICE();
  cuda::CudaBackend be;
  ConvGeom g;
  g.B = 2, g.Cin = 3, g.H = 8, g.W = 8, g.Cout = 4, g.K = 3, g.stride = 1, g.pad = 1;
  g.Ho = 8, g.Wo = 8;
  BackendBuffer x(be, normals(1, 2 * 3 * 64)), w(be, normals(2, 4 * 3 * 9)),
      y(be, size_t(2) * 4 * 64), xl(be, normals(3, 5 * 7)), wl(be, normals(4, 6 * 7)),
      yl(be, 5 * 6);
  be.conv2d_forward(x.get(), w.get(), nullptr, y.get(), g, {Act::relu, 0.0f});
  be.linear_forward(xl.get(), wl.get(), nullptr, yl.get(), 5, 7, 6, {});
  const size_t plans = be.cached_plans();
  EXPECT_EQ(plans, 2u);
  for (int i = 0; i < 3; ++i) {  // same shapes, activation only in the fused kernel: no new plan
    be.conv2d_forward(x.get(), w.get(), nullptr, y.get(), g, {Act::tanh, 0.0f});
    be.linear_forward(xl.get(), wl.get(), nullptr, yl.get(), 5, 7, 6, {Act::sigmoid, 0.0f});
  }
  EXPECT_EQ(be.cached_plans(), plans);
}

// No atomics where results must be deterministic: the same inputs give the same bits.
TEST(CudaBackendTest, ReductionsAndGradientsAreBitwiseRepeatable) {
  SKIP_WITHOUT_CUDA_DEVICE();
  cuda::CudaBackend be;
  ConvGeom g;
  g.B = 8, g.Cin = 16, g.H = 14, g.W = 14, g.Cout = 32, g.K = 4, g.stride = 2, g.pad = 1;
  g.Ho = 7, g.Wo = 7;
  const size_t nx = size_t(g.B) * g.Cin * g.H * g.W, ny = size_t(g.B) * g.Cout * g.Ho * g.Wo,
               nw = size_t(g.Cout) * g.Cin * g.K * g.K;
  BackendBuffer x(be, normals(5, nx)), dy(be, normals(6, ny)), big(be, normals(7, 1 << 22));
  auto run = [&] {
    BackendBuffer dw(be, nw), db(be, size_t(g.Cout)), ll(be, size_t(g.B));
    be.conv2d_backward_weights(x.get(), dy.get(), dw.get(), db.get(), g, GradWrite::accumulate);
    be.deconv2d_backward_weights(
        dy.get(), x.get(), dw.get(), db.get(),
        ConvGeom{g.B, g.Cout, g.Ho, g.Wo, g.Cin, g.H, g.W, g.K, g.stride, g.pad},
        GradWrite::accumulate);
    be.bernoulli_log_lik(x.get(), x.get(), ll.get(), nullptr, 1.0f, g.B, int(nx) / g.B);
    std::vector<float> out = dw.host(), b = db.host(), l = ll.host();
    out.insert(out.end(), b.begin(), b.end());
    out.insert(out.end(), l.begin(), l.end());
    const double s = be.sum_squares(big.get(), 1 << 22);
    out.push_back(float(s));
    float lo = 0;
    std::memcpy(&lo, &s, sizeof lo);  // the low half of the double too
    out.push_back(lo);
    return out;
  };
  const std::vector<float> first = run();
  for (int i = 0; i < 3; ++i) {
    const std::vector<float> again = run();
    ASSERT_EQ(std::memcmp(first.data(), again.data(), first.size() * sizeof(float)), 0)
        << "run " << i + 2 << " differs";
  }
}

TEST(CudaBackendTest, InconsistentGeometryNamesThePrimitiveAndShape) {
  SKIP_WITHOUT_CUDA_DEVICE();
  cuda::CudaBackend be;
  BackendBuffer buf(be, 4096);
  ConvGeom g;
  g.B = 1, g.Cin = 2, g.H = 10, g.W = 10, g.Cout = 3, g.K = 3, g.stride = 1, g.pad = 0;
  g.Ho = g.Wo = 2;  // should be 8
  try {
    be.conv2d_backward_data(buf.get(), buf.get(), buf.get(), g);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("conv2d backward data"), std::string::npos) << msg;
    EXPECT_NE(msg.find("x (1, 2, 10, 10)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(H + 2 * pad - K) / stride + 1"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace distvae
