// Layers as plain data with forward/backward functions side by side (llm.c style): linear,
// conv2d, deconv2d, batchnorm, activations, flatten, reshape. Shapes are per sample; B is the
// batch.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/activation.h"
#include "core/backend.h"
#include "core/param_store.h"
#include "core/tensor.h"

namespace distvae {

// What a user writes for one layer (parsed from YAML by launch/). Zero means "not given".
struct LayerSpec {
  // linear, conv2d, deconv2d, batchnorm, flatten, reshape, autoregressive, or an activation
  std::string type;
  int64_t out = 0;  // linear: features; conv2d/deconv2d: channels
  int64_t in = 0;   // optional check against the inferred input size
  int kernel = 0, stride = 1, padding = 0, output_padding = 0;
  // leaky_relu slope (default 0.01) / elu alpha (default 1); NaN means "not given".
  float alpha = std::numeric_limits<float>::quiet_NaN();
  std::vector<int64_t> shape;  // reshape target, per sample
  bool bias = true;
  // batchnorm: running = (1 - momentum) running + momentum batch (default 0.1); the variance's
  // epsilon (default 1e-5). NaN means "not given".
  double momentum = std::numeric_limits<double>::quiet_NaN();
  double eps = std::numeric_limits<double>::quiet_NaN();
  // conv2d: "A" or "B" for a PixelCNN mask (empty: none); see ConvMask.
  std::string mask;
};

// with_image (the config's "autoregressive" layer) puts the image's channels before the feature
// map's: y (C + F, H, W) = [image | x] for x (F, H, W). The layers after it form a PixelCNN over
// the image, conditioned on the feature map (see plan_layers for what keeps it causal).
enum class LayerKind { linear, conv2d, deconv2d, batchnorm, activation, view, with_image };

// The first "autoregressive" layer of a list (specs.end() without one).
inline std::vector<LayerSpec>::const_iterator find_autoregressive(
    const std::vector<LayerSpec>& specs) {
  for (auto it = specs.begin(); it != specs.end(); ++it)
    if (it->type == "autoregressive") return it;
  return specs.end();
}

// A masked conv2d (PixelCNN) sees, for output pixel p, only the input pixels before p in raster
// order (row by row, left to right): mask A excludes p itself (a network's first layer on the
// image, so no pixel sees its own value), mask B includes it (the layers after, whose input at p
// already depends only on pixels before p). The mask is spatial, the same for every pair of
// channels, and needs an odd kernel, stride 1 and padding kernel / 2, so that output pixel p sits
// on input pixel p. Right after a with_image layer, the mask covers the image's channels only:
// the feature map's depend on z alone, so every pixel may see all of them.
enum class ConvMask { none, A, B };

struct Layer {
  LayerKind kind = LayerKind::view;
  std::string name;             // "<network>.<index>" for messages and parameter names
  Shape in, out;                // per sample
  ActSpec act;                  // fused into linear/conv/deconv, or the activation itself
  size_t weight = 0, bias = 0;  // ParamStore slice indices
  bool has_bias = false;
  ConvGeom geom;                   // conv/deconv, B filled per call
  ConvMask mask = ConvMask::none;  // conv2d only
  int mask_channels = 0;           // the mask covers input channels [0, mask_channels); 0: all
  // batchnorm: C channels of S values per sample; weight/bias are gamma/beta; the running
  // averages are ParamStore state.
  int C = 0, S = 0;
  size_t running_mean = 0, running_var = 0;
  double momentum = 0.1, eps = 1e-5;
};

// Makes a batch norm's 2C + 1 sums global (an all-reduce sum across the ranks), so that the
// statistics are those of the whole batch however it is split; null: this rank's images alone.
template <class T>
using StatsReduceFn = std::function<void(T* sums, size_t n)>;

// What one batch-norm layer needs besides its parameters: buffers of C (mean, invstd) and 2C + 1
// (sums, dsums) values owned by the network, and whether it normalizes by the batch (training)
// or by the running averages.
template <class T>
struct BatchNormRun {
  T *mean = nullptr, *invstd = nullptr, *sums = nullptr, *dsums = nullptr;
  bool training = true;
  const StatsReduceFn<T>* reduce = nullptr;
};

// A masked conv2d's buffers, owned by the network: the mask, (Cout, Cin, K, K) values of 0 or 1,
// and the masked weights w * mask, which the forward pass writes and the backward pass reads.
template <class T>
struct MaskRun {
  T *mask = nullptr, *masked = nullptr;
};

// The layer's mask, 1 where a weight is used, as (Cout, Cin, K, K) values; empty without one.
std::vector<double> conv_mask_values(const Layer& l);

// y (B, out) = layer(x (B, in)). view layers return x itself (no copy); others write y. bn is
// the layer's batch-norm state (read by batch norms only), mask a masked conv2d's buffers, image
// the images (B, C, H, W) that a with_image layer puts before x.
template <class T>
const T* layer_forward(Backend<T>& be, ParamStore<T>& ps, const Layer& l, const T* x, T* y, int B,
                       const BatchNormRun<T>* bn = nullptr, const MaskRun<T>* mask = nullptr,
                       const T* image = nullptr);

// Whether a backward pass computes parameter gradients, and if so how it writes them into the
// store: overwrite for the first pass of a step (no zeroing first), accumulate for those after it.
enum class ParamGrads { none, overwrite, accumulate };

// Backward of one layer. dy = dL/dy for the layer's output y (B, out); it is overwritten in place
// by the fused activation's derivative (computed from y). Returns dL/dx: a view layer or an
// activation returns dy itself; linear/conv/deconv/with_image write dx_buf (skipped when dx_buf is
// null, as for a network's first layer) and write or add dL/dw and dL/db in the store, as grads
// says. A batch norm's dx is that of the batch statistics too, so it must follow a training
// forward. A masked conv2d's weight gradient is masked too (zero where the mask is), so the
// optimizer never moves the weights the mask hides.
template <class T>
T* layer_backward(Backend<T>& be, ParamStore<T>& ps, const Layer& l, const T* x, const T* y, T* dy,
                  T* dx_buf, int B, ParamGrads grads, const BatchNormRun<T>* bn = nullptr,
                  const MaskRun<T>* mask = nullptr);

}  // namespace distvae
