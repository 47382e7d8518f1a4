// Convolution and transposed convolution through cuDNN (NCHW, FP32 FMA math, deterministic
// algorithms), planned once per (operation, geometry): descriptors, algorithm, workspace and the
// transposed-weight scratch are set up on the first call with a shape. Bias and activation are the
// caller's (a fused elementwise kernel after the forward).
//
// A deconv2d with weights w (Cout, Cin, K, K) is the adjoint of a conv2d from y's shape to x's
// shape whose filter is w with its two channel axes swapped, (Cin, Cout, K, K): so deconv forward
// is cuDNN's backward-data pass, deconv backward-data its forward pass, and deconv backward-weights
// its backward-filter pass followed by the swap back.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>

#include "core/backend.h"

namespace distvae::cuda {

class Convolutions {
 public:
  explicit Convolutions(cudaStream_t stream);
  ~Convolutions();
  Convolutions(const Convolutions&) = delete;
  Convolutions& operator=(const Convolutions&) = delete;

  // y (B, Cout, Ho, Wo) = conv(x (B, Cin, H, W), w (Cout, Cin, K, K))          [overwrites y]
  void conv_forward(const float* x, const float* w, float* y, const ConvGeom& g);
  // dx (B, Cin, H, W) = conv^T(dy, w)                                          [overwrites dx]
  void conv_backward_data(const float* dy, const float* w, float* dx, const ConvGeom& g);
  // dw (Cout, Cin, K, K) (+)= dy (x) x                           [accumulates or overwrites]
  void conv_backward_weights(const float* x, const float* dy, float* dw, const ConvGeom& g,
                             bool accumulate);

  // y (B, Cout, Ho, Wo) = deconv(x (B, Cin, H, W), w (Cout, Cin, K, K))        [overwrites y]
  void deconv_forward(const float* x, const float* w, float* y, const ConvGeom& g);
  // dx (B, Cin, H, W) = deconv^T(dy, w)                                        [overwrites dx]
  void deconv_backward_data(const float* dy, const float* w, float* dx, const ConvGeom& g);
  // dw (Cout, Cin, K, K) (+)= ...                                [accumulates or overwrites]
  void deconv_backward_weights(const float* x, const float* dy, float* dw, const ConvGeom& g,
                               bool accumulate);

  size_t cached_plans() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace distvae::cuda
