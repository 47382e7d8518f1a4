// The backends the parity tests run over, and moving test data into a backend's memory and back.
// Every float backend this binary has besides the reference: "cpu", "dnnl", plus "cuda" in a
// -DDISTVAE_CUDA=ON build. A backend without its hardware here (cuda on a machine without a GPU)
// makes each of its tests report "skipped: no CUDA device", never pass silently.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/backends/cpu.h"
#include "core/backends/cuda_status.h"

namespace distvae {

// The backends with their own matmul, convolution and activation kernels (the parity tests of
// those): dnnl, and cuda in a CUDA build.
inline std::vector<std::string> backends_under_test() {
  std::vector<std::string> names{"dnnl"};
  if (cuda_backend_built()) names.push_back("cuda");
  return names;
}

// The above and "cpu" (CpuBackend: fast elementwise, objective, batch-norm and optimizer loops
// over the reference's matmul and convolution), for the tests of every primitive.
inline std::vector<std::string> all_backends_under_test() {
  std::vector<std::string> names = backends_under_test();
  names.insert(names.begin(), "cpu");
  return names;
}

// The backend, or null with *skip_reason set when this machine cannot run it.
inline std::unique_ptr<Backend<float>> make_test_backend(const std::string& name,
                                                         std::string* skip_reason) {
  if (name == "cuda") {
    std::string why;
    if (cuda_device_count(&why) == 0) {
      *skip_reason = "skipped: no CUDA device (" + why + ")";
      return nullptr;
    }
  }
  if (name == "cpu") return std::make_unique<CpuBackend>();  // the fast loops, no oneDNN
  return make_backend(name);
}

// For INSTANTIATE_TEST_SUITE_P: tests are named after their backend, e.g. .../cuda.
struct BackendName {
  std::string operator()(const ::testing::TestParamInfo<std::string>& info) const {
    return info.param;
  }
};

// A buffer in a backend's memory (device memory for cuda), filled from and read back to the host.
// Test inputs are float; a double backend gets them widened, so every backend sees the same values.
template <class T>
class BackendBuffer {
 public:
  BackendBuffer(Backend<T>& be, size_t n) : be_(&be), n_(n), p_(be.alloc(n)) {}
  BackendBuffer(Backend<T>& be, const std::vector<float>& host) : BackendBuffer(be, host.size()) {
    const std::vector<T> h(host.begin(), host.end());
    be.to_device(h.data(), p_, n_);
  }
  ~BackendBuffer() { be_->release(p_); }
  BackendBuffer(const BackendBuffer&) = delete;
  BackendBuffer& operator=(const BackendBuffer&) = delete;

  T* get() { return p_; }
  size_t size() const { return n_; }
  std::vector<T> host() const {
    std::vector<T> h(n_);
    be_->to_host(p_, h.data(), n_);
    return h;
  }

 private:
  Backend<T>* be_;
  size_t n_;
  T* p_;
};

// The geometry of a conv2d / deconv2d test case, output size derived from the input's.
inline ConvGeom conv_geom(int B, int Cin, int H, int W, int Cout, int K, int s, int p) {
  ConvGeom g;
  g.B = B, g.Cin = Cin, g.H = H, g.W = W, g.Cout = Cout, g.K = K, g.stride = s, g.pad = p;
  g.Ho = (H + 2 * p - K) / s + 1;
  g.Wo = (W + 2 * p - K) / s + 1;
  return g;
}

inline ConvGeom deconv_geom(int B, int Cin, int H, int W, int Cout, int K, int s, int p,
                            int out_pad) {
  ConvGeom g;
  g.B = B, g.Cin = Cin, g.H = H, g.W = W, g.Cout = Cout, g.K = K, g.stride = s, g.pad = p;
  g.Ho = (H - 1) * s - 2 * p + K + out_pad;
  g.Wo = (W - 1) * s - 2 * p + K + out_pad;
  return g;
}

}  // namespace distvae
