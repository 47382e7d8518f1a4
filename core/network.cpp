// Building a network from its layer list (shape inference, validation, activation fusion) and
// running forward and backward over it.
#include "core/network.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/rng.h"

namespace distvae {

namespace {

[[noreturn]] void fail(const std::string& net, size_t index, const LayerSpec& s,
                       const std::string& what) {
  throw NetworkSpecError(net + " layer " + std::to_string(index) + " (" + s.type + "): " + what);
}

// 32-bit FNV-1a: folds the network's name into its init stream so encoder and decoder differ.
uint64_t name_hash32(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

// A key that does not apply to the layer's type is a mistake in the config, not something to
// ignore: name it.
void reject_unused_keys(const std::string& net, size_t i, const LayerSpec& s) {
  Act ignored;
  const bool known = s.type == "linear" || s.type == "conv2d" || s.type == "deconv2d" ||
                     s.type == "batchnorm" || s.type == "flatten" || s.type == "reshape" ||
                     s.type == "autoregressive" || parse_act(s.type, &ignored);
  if (!known) return;  // the type itself is the error, reported below
  const bool conv = s.type == "conv2d" || s.type == "deconv2d";
  const bool parametered = conv || s.type == "linear";
  const bool has_alpha = s.type == "leaky_relu" || s.type == "elu";
  auto check = [&](bool used, bool allowed, const char* key) {
    if (used && !allowed) fail(net, i, s, std::string("'") + key + "' does not apply to " + s.type);
  };
  check(s.out != 0, parametered, "out");
  check(s.in != 0, parametered, "in");
  check(s.kernel != 0, conv, "kernel");
  check(s.stride != 1, conv, "stride");
  check(s.padding != 0, conv, "padding");
  check(s.output_padding != 0, s.type == "deconv2d" || s.type == "conv2d", "output_padding");
  check(!std::isnan(s.alpha), has_alpha, "alpha");
  check(!s.shape.empty(), s.type == "reshape", "shape");
  check(!s.bias, parametered, "bias");
  check(!std::isnan(s.momentum), s.type == "batchnorm", "momentum");
  check(!std::isnan(s.eps), s.type == "batchnorm", "eps");
  check(!s.mask.empty(), s.type == "conv2d", "mask");
}

// conv2d's mask: "A" or "B", with the geometry that keeps each output pixel on its input pixel.
ConvMask plan_mask(const std::string& net, size_t i, const LayerSpec& s, const ConvGeom& g) {
  if (s.mask.empty()) return ConvMask::none;
  if (s.mask != "A" && s.mask != "B")
    fail(net, i, s,
         "'mask' must be A (the first masked layer: a pixel does not see itself) or B "
         "(the layers after it), got '" +
             s.mask + "'");
  if (g.K % 2 == 0 || g.stride != 1 || g.pad != g.K / 2)
    fail(net, i, s,
         "a masked conv2d keeps each output pixel on its input pixel: it needs an odd kernel, "
         "stride 1 and padding kernel / 2 (here kernel " +
             std::to_string(g.K) + ", stride " + std::to_string(g.stride) + ", padding " +
             std::to_string(g.pad) + ")");
  return s.mask == "A" ? ConvMask::A : ConvMask::B;
}

// The autoregressive layer: the image's channels before the feature map (F, H, W) it gets.
Shape plan_with_image(const std::string& net, size_t i, const LayerSpec& s, const Shape& cur,
                      const Shape& image) {
  if (image.rank != 3)
    fail(net, i, s, "only a VAE's decoder sees the image, so only it can be autoregressive");
  if (cur.rank != 3 || cur[1] != image[1] || cur[2] != image[2])
    fail(net, i, s,
         "needs a feature map (channels, " + std::to_string(image[1]) + ", " +
             std::to_string(image[2]) + ") the size of the image " + image.str() + ", got " +
             cur.str());
  return Shape{image[0] + cur[0], cur[1], cur[2]};
}

// After the autoregressive layer, pixel p's output may depend on the image's pixels before p
// only: the first conv2d needs mask A (it reads the image, p included), those after it mask B or
// a 1x1 kernel (they read features already blind to p and after), and nothing may mix pixels
// otherwise (batch norm's statistics, linear, deconv2d and reshapes all do).
void check_causal(const std::string& net, size_t i, const LayerSpec& s, bool first_conv) {
  Act ignored;
  if (s.type == "conv2d") {
    if (first_conv && s.mask != "A")
      fail(net, i, s,
           "the first conv2d after 'autoregressive' reads the image itself: it needs mask: A, so "
           "that no pixel sees its own value");
    if (!first_conv && s.mask.empty() && s.kernel != 1)
      fail(net, i, s,
           "after 'autoregressive', a conv2d with a kernel larger than 1 needs mask: B (or A), or "
           "each pixel would see the pixels after it");
    return;
  }
  if (parse_act(s.type, &ignored)) return;
  fail(net, i, s,
       s.type == "autoregressive"
           ? std::string("a network has at most one 'autoregressive' layer")
           : "after 'autoregressive' only conv2d layers and activations keep each pixel blind "
             "to the pixels after it; " +
                 s.type + " mixes pixels");
}

bool has_params(LayerKind k) {
  return k == LayerKind::linear || k == LayerKind::conv2d || k == LayerKind::deconv2d ||
         k == LayerKind::batchnorm;
}

}  // namespace

std::vector<Layer> plan_layers(const std::string& net, const Shape& input,
                               const std::vector<LayerSpec>& specs, const Shape& image) {
  std::vector<Layer> layers;
  Shape cur = input;
  size_t autoregressive = specs.size();  // the autoregressive layer's index, if any
  bool seen_conv = false;                // a conv2d after it
  for (size_t i = 0; i < specs.size(); ++i) {
    const LayerSpec& s = specs[i];
    Layer l;
    l.name = net + "." + std::to_string(i);
    l.in = cur;
    Act act;
    reject_unused_keys(net, i, s);
    if (autoregressive < i) {
      check_causal(net, i, s, !seen_conv);
      // The first conv2d reads [image | feature map]: its mask covers the image's channels only.
      if (s.type == "conv2d" && !seen_conv) l.mask_channels = int(image[0]);
      seen_conv = seen_conv || s.type == "conv2d";
    }
    if (s.type == "autoregressive") {
      l.kind = LayerKind::with_image;
      l.out = plan_with_image(net, i, s, cur, image);
      autoregressive = i;
    } else if (s.type == "linear") {
      if (cur.rank != 1)
        fail(net, i, s,
             "input has shape " + cur.str() +
                 " but linear needs a flat input; add a flatten layer before it");
      if (s.out <= 0) fail(net, i, s, "missing or non-positive 'out' (number of output features)");
      if (s.in > 0 && s.in != cur[0])
        fail(net, i, s,
             "declares in: " + std::to_string(s.in) + " but its input has " +
                 std::to_string(cur[0]) + " features");
      l.kind = LayerKind::linear;
      l.out = Shape{s.out};
    } else if (s.type == "conv2d" || s.type == "deconv2d") {
      const bool de = s.type == "deconv2d";
      if (cur.rank != 3)
        fail(net, i, s,
             "input has shape " + cur.str() + " but " + s.type +
                 " needs (channels, height, width); add a reshape layer before it");
      if (s.out <= 0) fail(net, i, s, "missing or non-positive 'out' (number of output channels)");
      if (s.kernel <= 0) fail(net, i, s, "missing or non-positive 'kernel'");
      if (s.stride <= 0) fail(net, i, s, "'stride' must be >= 1");
      if (s.padding < 0) fail(net, i, s, "'padding' must be >= 0");
      if (s.in > 0 && s.in != cur[0])
        fail(net, i, s,
             "declares in: " + std::to_string(s.in) + " channels but its input has " +
                 std::to_string(cur[0]));
      ConvGeom g;
      g.Cin = int(cur[0]), g.H = int(cur[1]), g.W = int(cur[2]);
      g.Cout = int(s.out), g.K = s.kernel, g.stride = s.stride, g.pad = s.padding;
      if (de) {
        if (s.output_padding < 0 || s.output_padding >= s.stride)
          fail(net, i, s, "'output_padding' must be in [0, stride)");
        g.Ho = (g.H - 1) * g.stride - 2 * g.pad + g.K + s.output_padding;
        g.Wo = (g.W - 1) * g.stride - 2 * g.pad + g.K + s.output_padding;
      } else {
        if (s.output_padding != 0) fail(net, i, s, "'output_padding' applies to deconv2d only");
        if (g.H + 2 * g.pad < g.K || g.W + 2 * g.pad < g.K)
          fail(net, i, s,
               "kernel " + std::to_string(g.K) + " is larger than the padded input " +
                   std::to_string(g.H + 2 * g.pad) + "x" + std::to_string(g.W + 2 * g.pad));
        g.Ho = (g.H + 2 * g.pad - g.K) / g.stride + 1;
        g.Wo = (g.W + 2 * g.pad - g.K) / g.stride + 1;
      }
      if (g.Ho <= 0 || g.Wo <= 0) fail(net, i, s, "output would be empty");
      l.kind = de ? LayerKind::deconv2d : LayerKind::conv2d;
      l.geom = g;
      l.mask = plan_mask(net, i, s, g);
      l.out = Shape{g.Cout, g.Ho, g.Wo};
    } else if (s.type == "batchnorm") {
      if (cur.rank != 1 && cur.rank != 3)
        fail(net, i, s,
             "input has shape " + cur.str() +
                 " but batchnorm normalizes features (F) or channels (C, H, W)");
      l.kind = LayerKind::batchnorm;
      l.C = int(cur[0]);
      l.S = cur.rank == 3 ? int(cur[1] * cur[2]) : 1;
      if (!std::isnan(s.momentum)) {
        if (!(s.momentum >= 0 && s.momentum <= 1)) fail(net, i, s, "'momentum' must be in [0, 1]");
        l.momentum = s.momentum;
      }
      if (!std::isnan(s.eps)) {
        if (!(s.eps > 0) || !std::isfinite(s.eps)) fail(net, i, s, "'eps' must be > 0");
        l.eps = s.eps;
      }
      l.out = cur;
    } else if (parse_act(s.type, &act)) {
      l.kind = LayerKind::activation;
      l.act.kind = act;
      if (act == Act::leaky_relu) l.act.alpha = std::isnan(s.alpha) ? 0.01f : s.alpha;
      if (act == Act::elu) l.act.alpha = std::isnan(s.alpha) ? 1.0f : s.alpha;
      if ((act == Act::leaky_relu || act == Act::elu) && !(l.act.alpha > 0))
        fail(net, i, s, "'alpha' must be > 0");
      l.out = cur;
    } else if (s.type == "flatten") {
      l.out = Shape{cur.numel()};
    } else if (s.type == "reshape") {
      if (s.shape.empty() || s.shape.size() > 3)
        fail(net, i, s, "missing 'shape' (a list of 1 to 3 sizes per sample)");
      Shape to;
      for (int64_t d : s.shape) {
        if (d <= 0) fail(net, i, s, "'shape' sizes must be positive");
        to.dims[size_t(to.rank++)] = d;
      }
      if (to.numel() != cur.numel())
        fail(net, i, s,
             "reshape to " + to.str() + " holds " + std::to_string(to.numel()) +
                 " values but its input " + cur.str() + " has " + std::to_string(cur.numel()));
      l.out = to;
    } else {
      fail(net, i, s,
           "unknown layer type (expected linear, conv2d, deconv2d, batchnorm, flatten, reshape, "
           "autoregressive, relu, leaky_relu, elu, softplus, tanh or sigmoid)");
    }
    if (has_params(l.kind)) l.has_bias = s.bias;  // always true for batchnorm (beta)
    // Fuse an activation into the preceding parametered layer: one pass over the output, and
    // backward needs only that output.
    if (l.kind == LayerKind::activation && !layers.empty() && has_params(layers.back().kind) &&
        layers.back().act.kind == Act::none) {
      layers.back().act = l.act;
    } else {
      layers.push_back(l);
    }
    cur = l.out;
  }
  if (autoregressive < specs.size() && !seen_conv)
    fail(net, autoregressive, specs[autoregressive],
         "needs a conv2d with mask: A after it, or each pixel's output would see the pixel itself");
  return layers;
}

template <class T>
Network<T>::Network(Backend<T>& be, std::string name, const Shape& input,
                    const std::vector<LayerSpec>& specs, int max_batch, const Shape& image)
    : be_(be), name_(std::move(name)), input_(input), max_batch_(max_batch), params_(be) {
  if (max_batch <= 0) throw NetworkSpecError(name_ + ": max batch must be positive");
  layers_ = plan_layers(name_, input, specs, image);
  with_image_ =
      size_t(std::find_if(layers_.begin(), layers_.end(),
                          [](const Layer& l) { return l.kind == LayerKind::with_image; }) -
             layers_.begin());
  for (Layer& l : layers_) {
    if (l.kind == LayerKind::batchnorm) {  // y = gamma xhat + beta
      l.weight = params_.add(l.name + ".weight", Shape{l.C});
      l.bias = params_.add(l.name + ".bias", Shape{l.C});
      l.running_mean = params_.add_state(l.name + ".running_mean", Shape{l.C});
      l.running_var = params_.add_state(l.name + ".running_var", Shape{l.C});
      continue;
    }
    if (!has_params(l.kind)) continue;
    Shape w = l.kind == LayerKind::linear ? Shape{l.out[0], l.in[0]}
                                          : Shape{l.geom.Cout, l.geom.Cin, l.geom.K, l.geom.K};
    l.weight = params_.add(l.name + ".weight", w);
    if (l.has_bias) l.bias = params_.add(l.name + ".bias", Shape{w[0]});
  }
  params_.allocate();
  bn_.resize(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (layers_[i].kind != LayerKind::batchnorm) continue;
    const size_t C = size_t(layers_[i].C);
    BatchNormRun<T>& b = bn_[i];
    for (auto [p, n] :
         {std::pair{&b.mean, C}, {&b.invstd, C}, {&b.sums, 2 * C + 1}, {&b.dsums, 2 * C + 1}})
      arena_.push_back(*p = be_.alloc(n));
    b.reduce = &reduce_;
  }
  masks_.resize(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::vector<double> m = conv_mask_values(layers_[i]);
    if (m.empty()) continue;
    const std::vector<T> host(m.begin(), m.end());
    for (T** p : {&masks_[i].mask, &masks_[i].masked}) arena_.push_back(*p = be_.alloc(m.size()));
    be_.to_device(host.data(), masks_[i].mask, host.size());
  }
  first_param_ = layers_.size();
  for (size_t i = layers_.size(); i-- > 0;)
    if (has_params(layers_[i].kind)) first_param_ = i;
  try {
    allocate_activations(input, max_batch);
  } catch (const std::bad_alloc&) {
    for (T* p : arena_) be_.release(p);  // the destructor does not run when a constructor throws
    size_t values = size_t(input.numel());
    for (const Layer& l : layers_) values += size_t(l.out.numel());
    throw std::runtime_error(name_ + ": out of memory allocating its activations for a batch of " +
                             std::to_string(max_batch) + " (about " +
                             std::to_string(values * size_t(max_batch) * sizeof(T) / 1000000) +
                             " MB); lower train.batch");
  }
}

// The per-layer output buffers and the two gradient buffers, for max_batch rows.
template <class T>
void Network<T>::allocate_activations(const Shape& input, int max_batch) {
  size_t biggest = size_t(input.numel());
  for (const Layer& l : layers_) {
    T* buf = nullptr;
    if (l.kind != LayerKind::view) {
      buf = be_.alloc(size_t(max_batch) * size_t(l.out.numel()));
      arena_.push_back(buf);
    }
    out_buf_.push_back(buf);
    biggest = std::max(biggest, size_t(l.out.numel()));
  }
  outputs_.resize(layers_.size());
  grad_a_ = be_.alloc(size_t(max_batch) * biggest);
  arena_.push_back(grad_a_);
  grad_b_ = be_.alloc(size_t(max_batch) * biggest);
  arena_.push_back(grad_b_);
}

template <class T>
Network<T>::~Network() {
  for (T* p : arena_) be_.release(p);  // the gradient buffers among them
}

template <class T>
double Network<T>::forward_flops_per_sample() const {
  double f = 0;
  for (const Layer& l : layers_) {
    if (l.kind == LayerKind::linear) f += 2.0 * double(l.in[0]) * double(l.out[0]);
    if (l.kind == LayerKind::conv2d)
      f += 2.0 * double(l.out.numel()) * l.geom.Cin * l.geom.K * l.geom.K;
    if (l.kind == LayerKind::deconv2d)
      f += 2.0 * double(l.in.numel()) * l.geom.Cout * l.geom.K * l.geom.K;
  }
  return f;
}

template <class T>
void Network<T>::init(uint64_t seed) {
  std::vector<T> host;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    if (l.kind == LayerKind::batchnorm) {  // the identity at first: gamma 1, beta 0, var 1
      const size_t C = size_t(l.C);
      be_.fill(params_.value(l.weight), C, T(1));
      be_.fill(params_.value(l.bias), C, T(0));
      be_.fill(params_.value(l.running_mean), C, T(0));
      be_.fill(params_.value(l.running_var), C, T(1));
      continue;
    }
    if (!has_params(l.kind)) continue;
    const ParamSlice& w = params_.slices()[l.weight];
    double fan_in, fan_out;
    if (l.kind == LayerKind::linear) {
      fan_in = double(l.in[0]), fan_out = double(l.out[0]);
    } else {
      const double taps = double(l.geom.K) * l.geom.K;
      fan_in = l.geom.Cin * taps, fan_out = l.geom.Cout * taps;
      // A transposed convolution sums over only K^2 / stride^2 taps per output on average.
      if (l.kind == LayerKind::deconv2d) fan_in /= double(l.geom.stride) * l.geom.stride;
    }
    double std;
    switch (l.act.kind) {
      case Act::relu:
      case Act::elu:
        std = std::sqrt(2.0 / fan_in);
        break;  // Kaiming (He) normal
      case Act::leaky_relu:
        std = std::sqrt(2.0 / ((1.0 + double(l.act.alpha) * l.act.alpha) * fan_in));
        break;
      default:
        std = std::sqrt(2.0 / (fan_in + fan_out));  // Xavier (Glorot) normal
    }
    host.resize(w.size);
    normal_fill(seed, stream_id(rng_purpose::param_init, (name_hash32(name_) << 16) | i), 0, w.size,
                host.data());
    for (T& v : host) v = T(v * std);
    be_.to_device(host.data(), params_.value(l.weight), w.size);
    if (l.has_bias) be_.fill(params_.value(l.bias), params_.slices()[l.bias].size, T(0));
  }
}

template <class T>
const T* Network<T>::forward(const T* x, int B, const T* image) {
  if (B <= 0 || B > max_batch_)
    throw std::invalid_argument(name_ + ": batch " + std::to_string(B) + " outside [1, " +
                                std::to_string(max_batch_) + "]");
  x_ = x;
  forward_training_ = training_;
  last_batch_ = B;
  return run_layers(0, x, B, image);
}

template <class T>
const T* Network<T>::rerun_with_image(const T* image, int B) {
  if (!autoregressive() || B != last_batch_)
    throw std::logic_error(name_ + ": rerun_with_image needs an autoregressive network and the " +
                           "batch of its last forward");
  return run_layers(with_image_, with_image_ == 0 ? x_ : outputs_[with_image_ - 1], B, image);
}

template <class T>
const T* Network<T>::run_layers(size_t first, const T* x, int B, const T* image) {
  if (autoregressive() && !image)
    throw std::invalid_argument(name_ + ": an autoregressive network needs the image");
  const T* cur = x;
  for (size_t i = first; i < layers_.size(); ++i) {
    bn_[i].training = training_;
    cur = layer_forward(be_, params_, layers_[i], cur, out_buf_[i], B, &bn_[i], &masks_[i], image);
    outputs_[i] = cur;
  }
  return cur;
}

template <class T>
const T* Network<T>::backward(T* dout, int B, ParamGrads grads, bool need_dx,
                              const GradReadyFn& on_ready) {
  const bool param_grads = grads != ParamGrads::none;
  if (!forward_training_ && has_batchnorm() && param_grads)
    throw std::logic_error(name_ +
                           ": parameter gradients after an evaluation-mode forward (batch norm's "
                           "need the batch statistics; call set_training(true) first)");
  T* dy = dout;
  for (size_t i = layers_.size(); i-- > 0;) {
    const Layer& l = layers_[i];
    if (!need_dx && i < first_param_) break;  // nothing below needs a gradient
    const T* x = i == 0 ? x_ : outputs_[i - 1];
    // Without need_dx, the first parametered layer's input gradient is never used.
    T* dx_buf = (!need_dx && i == first_param_) ? nullptr : (dy == grad_a_ ? grad_b_ : grad_a_);
    dy = layer_backward(be_, params_, l, x, outputs_[i], dy, dx_buf, B, grads, &bn_[i], &masks_[i]);
    if (param_grads && on_ready && has_params(l.kind)) on_ready(params_.slices()[l.weight].offset);
  }
  return need_dx ? dy : nullptr;
}

template <class T>
bool Network<T>::has_batchnorm() const {
  return std::any_of(layers_.begin(), layers_.end(),
                     [](const Layer& l) { return l.kind == LayerKind::batchnorm; });
}

template class Network<float>;
template class Network<double>;

}  // namespace distvae
