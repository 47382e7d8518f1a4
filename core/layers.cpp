// Forward and backward of each layer kind, dispatched to the backend's primitives.
#include "core/layers.h"

namespace distvae {

namespace {
ConvGeom with_batch(ConvGeom g, int B) {
  g.B = B;
  return g;
}
}  // namespace

template <class T>
const T* layer_forward(Backend<T>& be, ParamStore<T>& ps, const Layer& l, const T* x, T* y, int B) {
  const T* b = l.has_bias ? ps.value(l.bias) : nullptr;
  switch (l.kind) {
    case LayerKind::linear:
      // x: (B, In)  w: (Out, In)  y: (B, Out)
      be.linear_forward(x, ps.value(l.weight), b, y, B, int(l.in[0]), int(l.out[0]), l.act);
      return y;
    case LayerKind::conv2d:
      // x: (B, Cin, H, W)  w: (Cout, Cin, K, K)  y: (B, Cout, Ho, Wo)
      be.conv2d_forward(x, ps.value(l.weight), b, y, with_batch(l.geom, B), l.act);
      return y;
    case LayerKind::deconv2d:
      be.deconv2d_forward(x, ps.value(l.weight), b, y, with_batch(l.geom, B), l.act);
      return y;
    case LayerKind::activation:
      be.act_forward(x, y, size_t(B) * size_t(l.in.numel()), l.act);
      return y;
    case LayerKind::view:
      return x;
  }
  return y;
}

template <class T>
T* layer_backward(Backend<T>& be, ParamStore<T>& ps, const Layer& l, const T* x, const T* y, T* dy,
                  T* dx_buf, int B, bool param_grads) {
  if (l.kind == LayerKind::view) return dy;
  if (l.act.kind != Act::none)  // dL/d(pre-activation) = dy * act'(from y), in place
    be.act_backward(y, dy, dy, size_t(B) * size_t(l.out.numel()), l.act);
  if (l.kind == LayerKind::activation) return dy;

  T* db = (param_grads && l.has_bias) ? ps.grad(l.bias) : nullptr;
  const T* w = ps.value(l.weight);
  if (l.kind == LayerKind::linear) {
    // dy: (B, Out)  w: (Out, In)  dx: (B, In)
    const int In = int(l.in[0]), Out = int(l.out[0]);
    if (dx_buf) be.linear_backward_data(dy, w, dx_buf, B, In, Out);
    if (param_grads) be.linear_backward_weights(x, dy, ps.grad(l.weight), db, B, In, Out);
  } else if (l.kind == LayerKind::conv2d) {
    const ConvGeom g = with_batch(l.geom, B);
    if (dx_buf) be.conv2d_backward_data(dy, w, dx_buf, g);
    if (param_grads) be.conv2d_backward_weights(x, dy, ps.grad(l.weight), db, g);
  } else {  // deconv2d
    const ConvGeom g = with_batch(l.geom, B);
    if (dx_buf) be.deconv2d_backward_data(dy, w, dx_buf, g);
    if (param_grads) be.deconv2d_backward_weights(x, dy, ps.grad(l.weight), db, g);
  }
  return dx_buf;
}

template const float* layer_forward(Backend<float>&, ParamStore<float>&, const Layer&, const float*,
                                    float*, int);
template const double* layer_forward(Backend<double>&, ParamStore<double>&, const Layer&,
                                     const double*, double*, int);
template float* layer_backward(Backend<float>&, ParamStore<float>&, const Layer&, const float*,
                               const float*, float*, float*, int, bool);
template double* layer_backward(Backend<double>&, ParamStore<double>&, const Layer&, const double*,
                                const double*, double*, double*, int, bool);

}  // namespace distvae
