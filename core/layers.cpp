// Forward and backward of each layer kind, dispatched to the backend's primitives.
#include "core/layers.h"

namespace distvae {

namespace {
ConvGeom with_batch(ConvGeom g, int B) {
  g.B = B;
  return g;
}

size_t weight_count(const Layer& l) {
  return size_t(l.geom.Cout) * size_t(l.geom.Cin) * size_t(l.geom.K) * size_t(l.geom.K);
}
}  // namespace

std::vector<double> conv_mask_values(const Layer& l) {
  if (l.mask == ConvMask::none) return {};
  // Tap (kh, kw) reads input pixel (oh + kh - c, ow + kw - c): before p in raster order when it
  // is on an earlier row, or on p's row to the left; p itself (kh = kw = c) for mask B only.
  const int K = l.geom.K, c = K / 2;
  std::vector<double> tap(size_t(K) * K);
  for (int kh = 0; kh < K; ++kh)
    for (int kw = 0; kw < K; ++kw)
      tap[size_t(kh) * K + kw] =
          kh < c || (kh == c && (kw < c || (kw == c && l.mask == ConvMask::B))) ? 1.0 : 0.0;
  // Weights (co, ci, kh, kw): channels ci >= mask_channels (a feature map of z) are seen whole.
  const size_t taps = tap.size(), Cin = size_t(l.geom.Cin);
  const size_t masked = l.mask_channels > 0 ? size_t(l.mask_channels) : Cin;
  std::vector<double> m(weight_count(l));
  for (size_t i = 0; i < m.size(); ++i) m[i] = (i / taps) % Cin < masked ? tap[i % taps] : 1.0;
  return m;
}

template <class T>
const T* layer_forward(Backend<T>& be, ParamStore<T>& ps, const Layer& l, const T* x, T* y, int B,
                       const BatchNormRun<T>* bn, const MaskRun<T>* mask, const T* image) {
  const T* b = l.has_bias ? ps.value(l.bias) : nullptr;
  switch (l.kind) {
    case LayerKind::batchnorm:
      // x, y: (B, C, S). Training: the batch's (global) mean and variance; else the running ones.
      if (bn->training) {
        be.batchnorm_sums(x, bn->sums, B, l.C, l.S);
        if (bn->reduce && *bn->reduce) (*bn->reduce)(bn->sums, 2 * size_t(l.C) + 1);
      }
      be.batchnorm_moments(bn->training ? bn->sums : nullptr, ps.value(l.running_mean),
                           ps.value(l.running_var), bn->mean, bn->invstd, l.C, T(l.eps),
                           T(l.momentum), bn->training);
      be.batchnorm_forward(x, bn->mean, bn->invstd, ps.value(l.weight), b, y, B, l.C, l.S, l.act);
      return y;
    case LayerKind::linear:
      // x: (B, In)  w: (Out, In)  y: (B, Out)
      be.linear_forward(x, ps.value(l.weight), b, y, B, int(l.in[0]), int(l.out[0]), l.act);
      return y;
    case LayerKind::conv2d: {
      // x: (B, Cin, H, W)  w: (Cout, Cin, K, K)  y: (B, Cout, Ho, Wo); a mask: w * mask
      const T* w = ps.value(l.weight);
      if (l.mask != ConvMask::none) {
        be.copy(w, mask->masked, weight_count(l));
        be.mul(weight_count(l), mask->mask, mask->masked);
        w = mask->masked;
      }
      be.conv2d_forward(x, w, b, y, with_batch(l.geom, B), l.act);
      return y;
    }
    case LayerKind::deconv2d:
      be.deconv2d_forward(x, ps.value(l.weight), b, y, with_batch(l.geom, B), l.act);
      return y;
    case LayerKind::activation:
      be.act_forward(x, y, size_t(B) * size_t(l.in.numel()), l.act);
      return y;
    case LayerKind::view:
      return x;
    case LayerKind::with_image: {
      const int F = int(l.in.numel());
      be.join_rows(image, x, y, B, int(l.out.numel()) - F, F);
      return y;
    }
  }
  return y;
}

template <class T>
T* layer_backward(Backend<T>& be, ParamStore<T>& ps, const Layer& l, const T* x, const T* y, T* dy,
                  T* dx_buf, int B, ParamGrads grads, const BatchNormRun<T>* bn,
                  const MaskRun<T>* mask) {
  if (l.kind == LayerKind::view) return dy;
  if (l.act.kind != Act::none)  // dL/d(pre-activation) = dy * act'(from y), in place
    be.act_backward(y, dy, dy, size_t(B) * size_t(l.out.numel()), l.act);
  if (l.kind == LayerKind::activation) return dy;
  if (l.kind == LayerKind::with_image) {  // the image is data: only the feature map's part flows
    const int F = int(l.in.numel());
    if (dx_buf) be.split_rows(dy, nullptr, dx_buf, B, int(l.out.numel()) - F, F);
    return dx_buf;
  }

  const bool param_grads = grads != ParamGrads::none;
  const GradWrite write =
      grads == ParamGrads::accumulate ? GradWrite::accumulate : GradWrite::overwrite;
  T* db = (param_grads && l.has_bias) ? ps.grad(l.bias) : nullptr;
  const T* w = ps.value(l.weight);
  if (l.kind == LayerKind::batchnorm && !bn->training) {
    // Evaluation mode: mean and invstd are the running averages, constants of x, so
    // dx = gamma invstd dy: the kernel's batch terms vanish with zero sums (count 1). Input
    // gradients only (AIS's dz through a generator); Network::backward refuses param_grads here.
    if (!dx_buf) return nullptr;
    be.fill(bn->dsums, 2 * size_t(l.C), T(0));
    be.fill(bn->dsums + 2 * size_t(l.C), 1, T(1));
    be.batchnorm_backward_data(x, dy, bn->mean, bn->invstd, w, bn->dsums, dx_buf, B, l.C, l.S);
  } else if (l.kind == LayerKind::batchnorm) {
    // dgamma = sum dy xhat, dbeta = sum dy over this rank's values (the gradient all-reduce adds
    // the ranks); dx needs the global sums, as every value moved the batch statistics.
    const size_t C = size_t(l.C);
    be.batchnorm_backward_sums(x, dy, bn->mean, bn->invstd, bn->dsums, B, l.C, l.S);
    if (param_grads && write == GradWrite::overwrite) {
      be.copy(bn->dsums + C, ps.grad(l.weight), C);
      be.copy(bn->dsums, db, C);
    } else if (param_grads) {
      be.axpy(C, T(1), bn->dsums + C, ps.grad(l.weight));
      be.axpy(C, T(1), bn->dsums, db);
    }
    if (!dx_buf) return nullptr;
    if (bn->reduce && *bn->reduce) (*bn->reduce)(bn->dsums, 2 * C + 1);
    be.batchnorm_backward_data(x, dy, bn->mean, bn->invstd, w, bn->dsums, dx_buf, B, l.C, l.S);
  } else if (l.kind == LayerKind::linear) {
    // dy: (B, Out)  w: (Out, In)  dx: (B, In)
    const int In = int(l.in[0]), Out = int(l.out[0]);
    if (dx_buf) be.linear_backward_data(dy, w, dx_buf, B, In, Out);
    if (param_grads) be.linear_backward_weights(x, dy, ps.grad(l.weight), db, B, In, Out, write);
  } else if (l.kind == LayerKind::conv2d) {
    const ConvGeom g = with_batch(l.geom, B);
    const bool masked = l.mask != ConvMask::none;
    if (dx_buf) be.conv2d_backward_data(dy, masked ? mask->masked : w, dx_buf, g);
    if (param_grads) {
      be.conv2d_backward_weights(x, dy, ps.grad(l.weight), db, g, write);
      if (masked) be.mul(weight_count(l), mask->mask, ps.grad(l.weight));
    }
  } else {  // deconv2d
    const ConvGeom g = with_batch(l.geom, B);
    if (dx_buf) be.deconv2d_backward_data(dy, w, dx_buf, g);
    if (param_grads) be.deconv2d_backward_weights(x, dy, ps.grad(l.weight), db, g, write);
  }
  return dx_buf;
}

template const float* layer_forward(Backend<float>&, ParamStore<float>&, const Layer&, const float*,
                                    float*, int, const BatchNormRun<float>*, const MaskRun<float>*,
                                    const float*);
template const double* layer_forward(Backend<double>&, ParamStore<double>&, const Layer&,
                                     const double*, double*, int, const BatchNormRun<double>*,
                                     const MaskRun<double>*, const double*);
template float* layer_backward(Backend<float>&, ParamStore<float>&, const Layer&, const float*,
                               const float*, float*, float*, int, ParamGrads,
                               const BatchNormRun<float>*, const MaskRun<float>*);
template double* layer_backward(Backend<double>&, ParamStore<double>&, const Layer&, const double*,
                                const double*, double*, double*, int, ParamGrads,
                                const BatchNormRun<double>*, const MaskRun<double>*);

}  // namespace distvae
