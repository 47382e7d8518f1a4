// The oneDNN (v2.x) CPU backend: matmul, convolution, deconvolution and eltwise primitives, created
// once per shape and cached; the elementwise, batch-norm, objective and optimizer loops are
// CpuBackend's.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "core/backends/cpu.h"

namespace distvae {

// Float only: oneDNN's f32 path. Tensors are plain row-major at the interface (NCHW images,
// (Cout, Cin, K, K) weights), so layers never see oneDNN's blocked formats.
//
// Not thread-safe: one instance owns one engine, one stream and the primitive cache; use one
// backend per thread (oneDNN parallelises each primitive internally).
class DnnlBackend final : public CpuBackend {
 public:
  DnnlBackend();
  ~DnnlBackend() override;
  DnnlBackend(const DnnlBackend&) = delete;
  DnnlBackend& operator=(const DnnlBackend&) = delete;

  std::string name() const override { return "dnnl"; }

  void linear_forward(const float* x, const float* w, const float* b, float* y, int B, int In,
                      int Out, ActSpec act) override;
  void linear_backward_data(const float* dy, const float* w, float* dx, int B, int In,
                            int Out) override;
  void linear_backward_weights(const float* x, const float* dy, float* dw, float* db, int B, int In,
                               int Out, GradWrite write) override;

  void conv2d_forward(const float* x, const float* w, const float* b, float* y, const ConvGeom& g,
                      ActSpec act) override;
  void conv2d_backward_data(const float* dy, const float* w, float* dx, const ConvGeom& g) override;
  void conv2d_backward_weights(const float* x, const float* dy, float* dw, float* db,
                               const ConvGeom& g, GradWrite write) override;

  void deconv2d_forward(const float* x, const float* w, const float* b, float* y, const ConvGeom& g,
                        ActSpec act) override;
  void deconv2d_backward_data(const float* dy, const float* w, float* dx,
                              const ConvGeom& g) override;
  void deconv2d_backward_weights(const float* x, const float* dy, float* dw, float* db,
                                 const ConvGeom& g, GradWrite write) override;

  void act_forward(const float* x, float* y, size_t n, ActSpec act) override;
  void act_backward(const float* y, const float* dy, float* dx, size_t n, ActSpec act) override;

  // Cached operations so far, one per distinct (operation, shape, activation, bias or not), each
  // holding its primitives and buffers. Lets tests check that a repeated shape is not rebuilt.
  size_t cached_primitives() const;

 private:
  struct Impl;  // engine, stream and the primitive cache; keeps dnnl.hpp out of this header
  std::unique_ptr<Impl> impl_;
};

// The instruction set oneDNN's kernels use on this CPU, e.g. "avx512_core_vnni".
std::string dnnl_cpu_isa();

// The oneDNN implementation linear_forward's matmul gets for (M, K) x (K, N) on this CPU, e.g.
// "brg:avx512_core" or "gemm:jit".
std::string dnnl_matmul_impl(int M, int K, int N);

// The oneDNN library this program runs with, e.g. "2.7.3".
std::string dnnl_library_version();

}  // namespace distvae
