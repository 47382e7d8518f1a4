// The oneDNN backend: each heavy primitive is built once per (operation, shape, activation), cached
// with its memory objects and scratch buffers, and executed on the caller's pointers.
#include "core/backends/dnnl.h"

#include <oneapi/dnnl/dnnl_debug.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <oneapi/dnnl/dnnl.hpp>
#include <source_location>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/backends/isa_clones.h"
#include "core/hash.h"

namespace distvae {
namespace {

using dnnl::memory;
using Md = memory::desc;
using Tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32;

enum class Op : int64_t {
  linear_fwd,
  linear_bwd_data,
  linear_bwd_weights,
  conv_fwd,
  conv_bwd_data,
  conv_bwd_weights,
  deconv_fwd,
  deconv_bwd_data,
  deconv_bwd_weights,
  act_fwd,
  act_bwd,
};

const char* op_name(Op op) {
  switch (op) {
    case Op::linear_fwd:
      return "linear forward (matmul)";
    case Op::linear_bwd_data:
      return "linear backward data (matmul)";
    case Op::linear_bwd_weights:
      return "linear backward weights (matmul)";
    case Op::conv_fwd:
      return "conv2d forward";
    case Op::conv_bwd_data:
      return "conv2d backward data";
    case Op::conv_bwd_weights:
      return "conv2d backward weights";
    case Op::deconv_fwd:
      return "deconv2d forward";
    case Op::deconv_bwd_data:
      return "deconv2d backward data";
    case Op::deconv_bwd_weights:
      return "deconv2d backward weights";
    case Op::act_fwd:
      return "activation forward (eltwise)";
    case Op::act_bwd:
      return "activation backward (eltwise)";
  }
  return "?";
}

// ---- error context ----

// Runs body; a dnnl::error becomes a std::runtime_error naming the call site, the primitive and
// its shapes. describe() builds the shape text only on failure, so the hot path never allocates.
template <class Body, class Describe>
void guarded(const char* what, Describe&& describe, Body&& body,
             std::source_location loc = std::source_location::current()) {
  try {
    body();
  } catch (const dnnl::error& e) {
    throw std::runtime_error(std::string(loc.file_name()) + ":" + std::to_string(loc.line()) +
                             ": oneDNN " + what + " failed for " + describe() + ": " + e.what() +
                             " (" + dnnl_status2str(e.status) +
                             "); check the layer's shapes and geometry");
  }
}

std::string describe_linear(int B, int In, int Out, ActSpec act, bool bias) {
  return "x (" + std::to_string(B) + ", " + std::to_string(In) + ") w (" + std::to_string(Out) +
         ", " + std::to_string(In) + ") y (" + std::to_string(B) + ", " + std::to_string(Out) +
         ")" + (bias ? " with bias" : "") + ", act " + act_name(act.kind);
}

std::string describe_conv(const ConvGeom& g, ActSpec act, bool bias) {
  auto s = [](int v) { return std::to_string(v); };
  return "x (" + s(g.B) + ", " + s(g.Cin) + ", " + s(g.H) + ", " + s(g.W) + ") -> y (" + s(g.B) +
         ", " + s(g.Cout) + ", " + s(g.Ho) + ", " + s(g.Wo) + "), K " + s(g.K) + " stride " +
         s(g.stride) + " pad " + s(g.pad) + (bias ? " with bias" : "") + ", act " +
         act_name(act.kind);
}

std::string describe_act(size_t n, ActSpec act) {
  return std::to_string(n) + " values, act " + act_name(act.kind) + " alpha " +
         std::to_string(act.alpha);
}

// ---- the cache ----

// Operation, shape numbers and activation: fixed size, so a lookup allocates nothing.
struct Key {
  std::array<int64_t, 16> v{};
  bool operator==(const Key&) const = default;
};

struct KeyHash {
  size_t operator()(const Key& k) const noexcept {
    return static_cast<size_t>(fnv1a(k.v.data(), sizeof k.v));
  }
};

// write: how a weight-gradient entry writes dw and db (forward and backward-data entries:
// overwrite, unused).
Key conv_key(Op op, const ConvGeom& g, ActSpec act, bool bias,
             GradWrite write = GradWrite::overwrite) {
  return Key{{static_cast<int64_t>(op), g.B, g.Cin, g.H, g.W, g.Cout, g.Ho, g.Wo, g.K, g.stride,
              g.pad, static_cast<int64_t>(act.kind), std::bit_cast<uint32_t>(act.alpha), bias,
              static_cast<int64_t>(write)}};
}

Key linear_key(Op op, int B, int In, int Out, ActSpec act, bool bias,
               GradWrite write = GradWrite::overwrite) {
  return Key{{static_cast<int64_t>(op), B, In, Out, static_cast<int64_t>(act.kind),
              std::bit_cast<uint32_t>(act.alpha), bias, static_cast<int64_t>(write)}};
}

Key act_key(Op op, size_t n, ActSpec act) {
  return Key{{static_cast<int64_t>(op), static_cast<int64_t>(n), static_cast<int64_t>(act.kind),
              std::bit_cast<uint32_t>(act.alpha)}};
}

// One cached operation: one or more primitives run in order (weight reorders around the main
// one), the memory objects they read and write, and the argument lists in the C API's form, so
// that executing allocates nothing (the C++ execute() builds a std::vector on every call).
struct Step {
  dnnl::primitive prim;
  std::vector<dnnl_exec_arg_t> args;
};

struct Entry {
  std::vector<memory> bound;  // the caller's tensors: no buffer, handle rebound on every call
  std::vector<memory> owned;  // buffers the entry keeps: reordered weights, gradients, scratchpads
  std::vector<Step> steps;
};

// Assembles an Entry on a cache miss. bind() order is the pointer order run() takes.
class EntryBuilder {
 public:
  explicit EntryBuilder(const dnnl::engine& eng) : eng_(eng) {}

  memory bind(const Md& md) {
    e_.bound.emplace_back(md, eng_, nullptr);  // DNNL_MEMORY_NONE
    return e_.bound.back();
  }

  memory own(const Md& md) {
    e_.owned.emplace_back(md, eng_);  // allocated by oneDNN, lives as long as the entry
    return e_.owned.back();
  }

  // Appends a primitive with a user-mode scratchpad of its own (no library allocation per run).
  void step(const dnnl::primitive_desc_base& pd,
            std::initializer_list<std::pair<int, memory>> args) {
    Step s;
    s.prim = dnnl::primitive(pd.get());
    for (const auto& [arg, mem] : args) s.args.push_back({arg, mem.get()});
    s.args.push_back({DNNL_ARG_SCRATCHPAD, own(pd.scratchpad_desc()).get()});
    e_.steps.push_back(std::move(s));
  }

  // `user` as a primitive wants it: itself when the layout already matches, else a buffer that a
  // reorder step fills from it (call before the step that reads it).
  memory input_as(const memory& user, const Md& want) {
    if (user.get_desc() == want) return user;
    memory m = own(want);
    step(dnnl::reorder::primitive_desc(eng_, user.get_desc(), eng_, want, attr_with_sum(false)),
         {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, m}});
    return m;
  }

  // A buffer in layout `md` for a primitive to overwrite, plus a step (call after that primitive)
  // adding it into `acc` in the caller's layout: a reorder with a sum post-op, acc += buffer.
  memory accumulator_for(const memory& acc, const Md& md) {
    memory m = own(md);
    pending_.push_back({m, acc, true});
    return m;
  }

  // Where a primitive should write `user`: itself when the layout matches, else a buffer that a
  // reorder (added after that primitive) copies into the caller's layout.
  memory output_as(const memory& user, const Md& md) {
    if (user.get_desc() == md) return user;
    memory m = own(md);
    pending_.push_back({m, user, false});
    return m;
  }

  // The reorders out of the buffers of accumulator_for and output_as; call after the primitive.
  void flush_outputs() {
    for (const Pending& o : pending_)
      step(dnnl::reorder::primitive_desc(eng_, o.from.get_desc(), eng_, o.to.get_desc(),
                                         attr_with_sum(o.sum)),
           {{DNNL_ARG_FROM, o.from}, {DNNL_ARG_TO, o.to}});
    pending_.clear();
  }

  Entry done() {
    flush_outputs();
    return std::move(e_);
  }

 private:
  static dnnl::primitive_attr attr_with_sum(bool sum) {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (sum) {
      dnnl::post_ops po;
      po.append_sum(1.0f);
      attr.set_post_ops(po);
    }
    return attr;
  }

  const dnnl::engine& eng_;
  Entry e_;
  struct Pending {
    memory from, to;
    bool sum;  // to += from, else to = from
  };
  std::vector<Pending> pending_;
};

// Binds the caller's pointers, in the order the entry's tensors were bound, and runs every step.
void run(Entry& e, dnnl::stream& s, std::initializer_list<const void*> ptrs) {
  if (ptrs.size() != e.bound.size())
    throw std::logic_error("backend_dnnl: argument count does not match the cached primitive");
  size_t i = 0;
  for (const void* p : ptrs) e.bound[i++].set_data_handle(const_cast<void*>(p));
  for (Step& st : e.steps)
    dnnl::error::wrap_c_api(
        dnnl_primitive_execute(st.prim.get(), s.get(), static_cast<int>(st.args.size()),
                               st.args.data()),
        "could not execute the primitive");
  s.wait();
}

// ---- activations ----

// The forward eltwise algorithm and its (alpha, beta); Act::none has none.
struct EltAlg {
  dnnl::algorithm alg;
  float alpha, beta;
};

EltAlg fwd_alg(ActSpec a) {
  using A = dnnl::algorithm;
  switch (a.kind) {
    case Act::relu:
      return {A::eltwise_relu, 0.0f, 0.0f};
    case Act::leaky_relu:
      return {A::eltwise_relu, a.alpha, 0.0f};
    case Act::elu:
      return {A::eltwise_elu, a.alpha, 0.0f};
    case Act::softplus:
      return {A::eltwise_soft_relu, 0.0f, 0.0f};
    case Act::tanh:
      return {A::eltwise_tanh, 0.0f, 0.0f};
    case Act::sigmoid:
      return {A::eltwise_logistic, 0.0f, 0.0f};
    case Act::none:
      break;
  }
  throw std::logic_error("backend_dnnl: no eltwise algorithm for activation 'none'");
}

// The backward algorithm that reads the forward output y instead of x, since layers keep only y.
// softplus has none in oneDNN 2.6; it is done in a loop (act_backward).
EltAlg bwd_alg(ActSpec a) {
  using A = dnnl::algorithm;
  switch (a.kind) {
    case Act::relu:
      return {A::eltwise_relu_use_dst_for_bwd, 0.0f, 0.0f};
    case Act::leaky_relu:
      return {A::eltwise_relu_use_dst_for_bwd, a.alpha, 0.0f};
    case Act::elu:
      return {A::eltwise_elu_use_dst_for_bwd, a.alpha, 0.0f};
    case Act::tanh:
      return {A::eltwise_tanh_use_dst_for_bwd, 0.0f, 0.0f};
    case Act::sigmoid:
      return {A::eltwise_logistic_use_dst_for_bwd, 0.0f, 0.0f};
    case Act::softplus:
    case Act::none:
      break;
  }
  throw std::logic_error("backend_dnnl: no use-dst eltwise backward for this activation");
}

// User-mode scratchpad (owned by the entry) plus the activation fused as an eltwise post-op.
dnnl::primitive_attr make_attr(ActSpec act = {}, bool accumulate = false) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::post_ops po;
  if (accumulate) po.append_sum(1.0f);  // dst = op(...) + 1 * dst
  if (act.kind != Act::none) {
    EltAlg e = fwd_alg(act);
    po.append_eltwise(1.0f, e.alg, e.alpha, e.beta);
  }
  attr.set_post_ops(po);
  return attr;
}

// ---- shapes ----

Md plain(const memory::dims& d, Tag t) {
  return Md(d, f32, t);
}

// oneDNN wants padding_r explicitly, with floor((In - K + pl + pr) / stride) + 1 == Out (for a
// deconvolution In and Out swap roles). Every pr in [lo, lo + stride - 1] satisfies it and gives
// the same numbers (the extra right padding is never read), so pick the one nearest to pad.
int64_t padding_r(int64_t in, int64_t out, const ConvGeom& g) {
  int64_t lo = (out - 1) * g.stride + g.K - in - g.pad;
  return std::clamp<int64_t>(g.pad, lo, lo + g.stride - 1);
}

// The memory descriptors and strides/paddings shared by conv and deconv primitives; throws when
// the geometry is one oneDNN cannot express, saying what it would accept.
struct ConvMds {
  Md x, w, b, y;  // x (B, Cin, H, W)  w (Cout, Cin, K, K)  b (Cout)  y (B, Cout, Ho, Wo)
  memory::dims strides, pl, pr;
};

ConvMds conv_mds(const ConvGeom& g, Op op, bool deconv) {
  auto fail = [&](const std::string& why) {
    throw std::runtime_error(std::string("backend_dnnl: ") + op_name(op) + ": geometry " +
                             describe_conv(g, {}, false) + " is not supported: " + why);
  };
  if (g.B < 1 || g.Cin < 1 || g.H < 1 || g.W < 1 || g.Cout < 1 || g.Ho < 1 || g.Wo < 1 || g.K < 1 ||
      g.stride < 1 || g.pad < 0)
    fail("sizes, K and stride must be >= 1 and pad >= 0");
  ConvMds m;
  m.x = plain({g.B, g.Cin, g.H, g.W}, Tag::nchw);
  m.w = plain({g.Cout, g.Cin, g.K, g.K}, Tag::oihw);  // deconv: o = its output channels too
  m.b = plain({g.Cout}, Tag::x);
  m.y = plain({g.B, g.Cout, g.Ho, g.Wo}, Tag::nchw);
  m.strides = {g.stride, g.stride};
  m.pl = {g.pad, g.pad};
  m.pr = deconv ? memory::dims{padding_r(g.Ho, g.H, g), padding_r(g.Wo, g.W, g)}
                : memory::dims{padding_r(g.H, g.Ho, g), padding_r(g.W, g.Wo, g)};
  // oneDNN cannot crop (negative right padding): bound the output size accordingly.
  if (m.pr[0] < 0 || m.pr[1] < 0) {
    if (deconv)
      fail(
          "Ho and Wo may be at most H * stride + K - pad - 1 (out_pad <= stride - 1 + pad); "
          "the usual size is (H - 1) * stride - 2 * pad + K + out_pad");
    else
      fail(
          "Ho and Wo must be at least (H + pad - K) / stride + 1; the usual size is "
          "(H + 2 * pad - K) / stride + 1");
  }
  return m;
}

// ---- builders: one per cached operation (called on a cache miss only) ----

Entry build_linear_fwd(const dnnl::engine& eng, int B, int In, int Out, ActSpec act, bool bias) {
  Md x = plain({B, In}, Tag::ab);
  Md wt = Md({In, Out}, f32, memory::dims{1, In});  // w (Out, In) read as w^T (In, Out)
  Md b = plain({1, Out}, Tag::ab);
  Md y = plain({B, Out}, Tag::ab);
  // y (B, Out) = act(x (B, In) . w^T (In, Out) + b (1, Out))
  auto d = bias ? dnnl::matmul::desc(x, wt, b, y) : dnnl::matmul::desc(x, wt, y);
  dnnl::matmul::primitive_desc pd(d, make_attr(act), eng);
  EntryBuilder eb(eng);
  memory xm = eb.bind(x), wm = eb.bind(wt), bm = bias ? eb.bind(b) : memory(), ym = eb.bind(y);
  if (bias)
    eb.step(pd,
            {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_BIAS, bm}, {DNNL_ARG_DST, ym}});
  else
    eb.step(pd, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym}});
  return eb.done();
}

Entry build_linear_bwd_data(const dnnl::engine& eng, int B, int In, int Out) {
  Md dy = plain({B, Out}, Tag::ab);
  Md w = plain({Out, In}, Tag::ab);
  Md dx = plain({B, In}, Tag::ab);
  // dx (B, In) = dy (B, Out) . w (Out, In)
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(dy, w, dx), make_attr(), eng);
  EntryBuilder eb(eng);
  memory dym = eb.bind(dy), wm = eb.bind(w), dxm = eb.bind(dx);
  eb.step(pd, {{DNNL_ARG_SRC, dym}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, dxm}});
  return eb.done();
}

Entry build_linear_bwd_weights(const dnnl::engine& eng, int B, int In, int Out, GradWrite write) {
  Md dyt = Md({Out, B}, f32, memory::dims{1, Out});  // dy (B, Out) read as dy^T (Out, B)
  Md x = plain({B, In}, Tag::ab);
  Md dw = plain({Out, In}, Tag::ab);
  // dw (Out, In) (+)= dy^T (Out, B) . x (B, In)   [a sum post-op accumulates in place; brgemm
  // pays for it with a pass over dw, 7% of an MLP VAE step on AVX-512]
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(dyt, x, dw),
                                  make_attr({}, write == GradWrite::accumulate), eng);
  EntryBuilder eb(eng);
  memory dym = eb.bind(dyt), xm = eb.bind(x), dwm = eb.bind(dw);
  eb.step(pd, {{DNNL_ARG_SRC, dym}, {DNNL_ARG_WEIGHTS, xm}, {DNNL_ARG_DST, dwm}});
  return eb.done();
}

// Convolution and deconvolution share their builders: oneDNN's descriptors for the two take the
// same arguments.
struct ConvKind {
  using Fwd = dnnl::convolution_forward;
  using BwdData = dnnl::convolution_backward_data;
  using BwdWeights = dnnl::convolution_backward_weights;
  static constexpr auto alg = dnnl::algorithm::convolution_direct;  // not auto/winograd
  static constexpr bool deconv = false;
  static constexpr Op fwd = Op::conv_fwd, bwd_data = Op::conv_bwd_data,
                      bwd_weights = Op::conv_bwd_weights;
};

struct DeconvKind {
  using Fwd = dnnl::deconvolution_forward;
  using BwdData = dnnl::deconvolution_backward_data;
  using BwdWeights = dnnl::deconvolution_backward_weights;
  static constexpr auto alg = dnnl::algorithm::deconvolution_direct;
  static constexpr bool deconv = true;
  static constexpr Op fwd = Op::deconv_fwd, bwd_data = Op::deconv_bwd_data,
                      bwd_weights = Op::deconv_bwd_weights;
};

// Weights are given to oneDNN as `any`: with plain oihw a deconvolution falls back to the
// reference implementation (its weights are a transposed convolution's), so oneDNN picks the
// layout and a cached reorder converts the caller's (Cout, Cin, K, K) weights on each call.
// That costs O(weights), small next to the convolution.
Md any_weights(const ConvGeom& g) {
  return Md({g.Cout, g.Cin, g.K, g.K}, f32, Tag::any);
}

// The activations too are given as `any`: on plain NCHW oneDNN runs convolutions as im2col + GEMM
// (x64:gemm:jit), 5-20x slower here than its direct kernels on channel-blocked layouts, which
// more than pays for reordering the input in and the output back inside the entry. Tensors of
// fewer than 8 channels stay plain: blocking pads their channels to 16, and a 32 -> 1 channel
// deconvolution took 2.7 ms blocked against 0.7 ms plain.
ConvMds with_any_activations(ConvMds m) {
  if (m.x.dims()[1] >= 8) m.x = Md(m.x.dims(), f32, Tag::any);
  if (m.y.dims()[1] >= 8) m.y = Md(m.y.dims(), f32, Tag::any);
  return m;
}

// The forward primitive descriptor: executed by the forward entry, and the hint each backward
// primitive descriptor needs.
template <class Kind>
typename Kind::Fwd::primitive_desc fwd_pd(const dnnl::engine& eng, const ConvMds& m, const Md& w,
                                          bool bias, const dnnl::primitive_attr& attr) {
  constexpr auto pk = dnnl::prop_kind::forward_training;
  auto d = bias ? typename Kind::Fwd::desc(pk, Kind::alg, m.x, w, m.b, m.y, m.strides, m.pl, m.pr)
                : typename Kind::Fwd::desc(pk, Kind::alg, m.x, w, m.y, m.strides, m.pl, m.pr);
  return typename Kind::Fwd::primitive_desc(d, attr, eng);
}

template <class Kind>
Entry build_conv_fwd(const dnnl::engine& eng, const ConvGeom& g, ActSpec act, bool bias) {
  ConvMds m = conv_mds(g, Kind::fwd, Kind::deconv);
  // conv:   y[b, co, oh, ow] = sum x[b, ci, oh*s - p + kh, ow*s - p + kw] * w[co, ci, kh, kw]
  // deconv: y[b, co, ih*s - p + kh, iw*s - p + kw] += x[b, ci, ih, iw] * w[co, ci, kh, kw]
  // then y = act(y + b[co]);  x (B, Cin, H, W)  w (Cout, Cin, K, K)  b (Cout)  y (B, Cout, Ho, Wo)
  auto pd = fwd_pd<Kind>(eng, with_any_activations(m), any_weights(g), bias, make_attr(act));
  EntryBuilder eb(eng);
  memory x = eb.bind(m.x), w = eb.bind(m.w), b = bias ? eb.bind(m.b) : memory(), y = eb.bind(m.y);
  memory xi = eb.input_as(x, pd.src_desc()), wi = eb.input_as(w, pd.weights_desc());
  memory yo = eb.output_as(y, pd.dst_desc());
  if (bias)
    eb.step(pd,
            {{DNNL_ARG_SRC, xi}, {DNNL_ARG_WEIGHTS, wi}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, yo}});
  else
    eb.step(pd, {{DNNL_ARG_SRC, xi}, {DNNL_ARG_WEIGHTS, wi}, {DNNL_ARG_DST, yo}});
  return eb.done();
}

template <class Kind>
Entry build_conv_bwd_data(const dnnl::engine& eng, const ConvGeom& g) {
  ConvMds m = conv_mds(g, Kind::bwd_data, Kind::deconv);
  // dx (B, Cin, H, W) = the forward op's transpose applied to dy (B, Cout, Ho, Wo) with w
  const ConvMds a = with_any_activations(m);
  typename Kind::BwdData::desc d(Kind::alg, a.x, any_weights(g), a.y, m.strides, m.pl, m.pr);
  typename Kind::BwdData::primitive_desc pd(
      d, make_attr(), eng, fwd_pd<Kind>(eng, a, any_weights(g), false, make_attr()));
  EntryBuilder eb(eng);
  memory dy = eb.bind(m.y), w = eb.bind(m.w), dx = eb.bind(m.x);
  memory dyi = eb.input_as(dy, pd.diff_dst_desc()), wi = eb.input_as(w, pd.weights_desc());
  memory dxo = eb.output_as(dx, pd.diff_src_desc());
  eb.step(pd, {{DNNL_ARG_DIFF_DST, dyi}, {DNNL_ARG_WEIGHTS, wi}, {DNNL_ARG_DIFF_SRC, dxo}});
  return eb.done();
}

template <class Kind>
Entry build_conv_bwd_weights(const dnnl::engine& eng, const ConvGeom& g, bool bias,
                             GradWrite write) {
  ConvMds m = conv_mds(g, Kind::bwd_weights, Kind::deconv);
  // dw (Cout, Cin, K, K) (+)= sum over b and positions of dy * x;  db (Cout) (+)= sum over b, Ho,
  // Wo of dy. oneDNN overwrites its outputs: to accumulate, they go to entry-owned buffers that
  // reorders with a sum post-op then add into the caller's dw and db.
  const ConvMds a = with_any_activations(m);
  auto d = bias ? typename Kind::BwdWeights::desc(Kind::alg, a.x, any_weights(g), m.b, a.y,
                                                  m.strides, m.pl, m.pr)
                : typename Kind::BwdWeights::desc(Kind::alg, a.x, any_weights(g), a.y, m.strides,
                                                  m.pl, m.pr);
  typename Kind::BwdWeights::primitive_desc pd(
      d, make_attr(), eng, fwd_pd<Kind>(eng, a, any_weights(g), bias, make_attr()));
  EntryBuilder eb(eng);
  memory x = eb.bind(m.x), dy = eb.bind(m.y), dw = eb.bind(m.w),
         db = bias ? eb.bind(m.b) : memory();
  memory xi = eb.input_as(x, pd.src_desc()), dyi = eb.input_as(dy, pd.diff_dst_desc());
  const bool acc = write == GradWrite::accumulate;
  memory dwi = acc ? eb.accumulator_for(dw, pd.diff_weights_desc())
                   : eb.output_as(dw, pd.diff_weights_desc());
  if (bias) {
    memory dbi =
        acc ? eb.accumulator_for(db, pd.diff_bias_desc()) : eb.output_as(db, pd.diff_bias_desc());
    eb.step(pd, {{DNNL_ARG_SRC, xi},
                 {DNNL_ARG_DIFF_DST, dyi},
                 {DNNL_ARG_DIFF_WEIGHTS, dwi},
                 {DNNL_ARG_DIFF_BIAS, dbi}});
  } else {
    eb.step(pd, {{DNNL_ARG_SRC, xi}, {DNNL_ARG_DIFF_DST, dyi}, {DNNL_ARG_DIFF_WEIGHTS, dwi}});
  }
  return eb.done();
}

Entry build_act_fwd(const dnnl::engine& eng, size_t n, ActSpec act) {
  Md md = plain({static_cast<int64_t>(n)}, Tag::x);
  EltAlg e = fwd_alg(act);
  // y (n) = act(x (n)); x == y is fine (eltwise runs in place)
  dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, e.alg, md, e.alpha, e.beta);
  dnnl::eltwise_forward::primitive_desc pd(d, make_attr(), eng);
  EntryBuilder eb(eng);
  memory x = eb.bind(md), y = eb.bind(md);
  eb.step(pd, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
  return eb.done();
}

Entry build_act_bwd(const dnnl::engine& eng, size_t n, ActSpec act) {
  Md md = plain({static_cast<int64_t>(n)}, Tag::x);
  EltAlg e = bwd_alg(act);
  dnnl::eltwise_forward::primitive_desc hint(
      dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, e.alg, md, e.alpha, e.beta),
      eng);
  // dx (n) = dy (n) * act'(from y (n)); dy == dx is fine
  dnnl::eltwise_backward::desc d(e.alg, md, md, e.alpha, e.beta);
  dnnl::eltwise_backward::primitive_desc pd(d, make_attr(), eng, hint);
  EntryBuilder eb(eng);
  memory y = eb.bind(md), dy = eb.bind(md), dx = eb.bind(md);
  eb.step(pd, {{DNNL_ARG_DST, y}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, dx}});
  return eb.done();
}

// y (B, C, plane) += b (C): a deconvolution's bias, see deconv2d_forward.
DISTVAE_ISA_CLONES void add_channel_bias(const float* b, float* y, int B, int C, size_t plane) {
#pragma omp parallel for
  for (int n = 0; n < B; ++n)
    for (int c = 0; c < C; ++c) {
      float* yp = y + (size_t(n) * C + c) * plane;
      const float bc = b[c];
      for (size_t i = 0; i < plane; ++i) yp[i] += bc;
    }
}

// db (Out) (+)= sum_b dy (B, Out): a linear layer's bias gradient, B * Out adds, not worth a
// primitive.
DISTVAE_ISA_CLONES void row_sums(const float* dy, float* db, int B, int Out, GradWrite write) {
  if (write == GradWrite::overwrite) std::fill(db, db + Out, 0.0f);
  for (int i = 0; i < B; ++i) {
    const float* row = dy + size_t(i) * Out;
    for (int o = 0; o < Out; ++o) db[o] += row[o];
  }
}

size_t y_size(const ConvGeom& g) {
  return size_t(g.B) * g.Cout * g.Ho * g.Wo;
}

}  // namespace

// ---- the backend ----

struct DnnlBackend::Impl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  std::unordered_map<Key, Entry, KeyHash> cache;

  // The cached entry for key, built by build() on the first call with that key.
  template <class Build>
  Entry& get(const Key& key, Build&& build) {
    auto it = cache.find(key);
    if (it == cache.end()) it = cache.emplace(key, build()).first;
    return it->second;
  }

  // conv2d and deconv2d differ only in Kind.
  template <class Kind>
  void conv_fwd(const float* x, const float* w, const float* b, float* y, const ConvGeom& g,
                ActSpec act) {
    const bool bias = b != nullptr;
    guarded(
        op_name(Kind::fwd), [&] { return describe_conv(g, act, bias); },
        [&] {
          Entry& e = get(conv_key(Kind::fwd, g, act, bias),
                         [&] { return build_conv_fwd<Kind>(eng, g, act, bias); });
          if (bias)
            run(e, strm, {x, w, b, y});
          else
            run(e, strm, {x, w, y});
        });
  }

  template <class Kind>
  void conv_bwd_data(const float* dy, const float* w, float* dx, const ConvGeom& g) {
    guarded(
        op_name(Kind::bwd_data), [&] { return describe_conv(g, {}, false); },
        [&] {
          Entry& e = get(conv_key(Kind::bwd_data, g, {}, false),
                         [&] { return build_conv_bwd_data<Kind>(eng, g); });
          run(e, strm, {dy, w, dx});
        });
  }

  template <class Kind>
  void conv_bwd_weights(const float* x, const float* dy, float* dw, float* db, const ConvGeom& g,
                        GradWrite write) {
    const bool bias = db != nullptr;
    guarded(
        op_name(Kind::bwd_weights), [&] { return describe_conv(g, {}, bias); },
        [&] {
          Entry& e = get(conv_key(Kind::bwd_weights, g, {}, bias, write),
                         [&] { return build_conv_bwd_weights<Kind>(eng, g, bias, write); });
          if (bias)
            run(e, strm, {x, dy, dw, db});
          else
            run(e, strm, {x, dy, dw});
        });
  }
};

DnnlBackend::DnnlBackend() {
  guarded(
      "engine/stream creation", [] { return std::string("the cpu engine"); },
      [&] { impl_ = std::make_unique<Impl>(); });
}

DnnlBackend::~DnnlBackend() = default;

size_t DnnlBackend::cached_primitives() const {
  return impl_->cache.size();
}

void DnnlBackend::linear_forward(const float* x, const float* w, const float* b, float* y, int B,
                                 int In, int Out, ActSpec act) {
  const bool bias = b != nullptr;
  guarded(
      op_name(Op::linear_fwd), [&] { return describe_linear(B, In, Out, act, bias); },
      [&] {
        Entry& e = impl_->get(linear_key(Op::linear_fwd, B, In, Out, act, bias),
                              [&] { return build_linear_fwd(impl_->eng, B, In, Out, act, bias); });
        if (bias)
          run(e, impl_->strm, {x, w, b, y});
        else
          run(e, impl_->strm, {x, w, y});
      });
}

void DnnlBackend::linear_backward_data(const float* dy, const float* w, float* dx, int B, int In,
                                       int Out) {
  guarded(
      op_name(Op::linear_bwd_data), [&] { return describe_linear(B, In, Out, {}, false); },
      [&] {
        Entry& e = impl_->get(linear_key(Op::linear_bwd_data, B, In, Out, {}, false),
                              [&] { return build_linear_bwd_data(impl_->eng, B, In, Out); });
        run(e, impl_->strm, {dy, w, dx});
      });
}

void DnnlBackend::linear_backward_weights(const float* x, const float* dy, float* dw, float* db,
                                          int B, int In, int Out, GradWrite write) {
  guarded(
      op_name(Op::linear_bwd_weights),
      [&] { return describe_linear(B, In, Out, {}, db != nullptr); },
      [&] {
        Entry& e =
            impl_->get(linear_key(Op::linear_bwd_weights, B, In, Out, {}, false, write),
                       [&] { return build_linear_bwd_weights(impl_->eng, B, In, Out, write); });
        run(e, impl_->strm, {dy, x, dw});
      });
  if (db) row_sums(dy, db, B, Out, write);
}

void DnnlBackend::conv2d_forward(const float* x, const float* w, const float* b, float* y,
                                 const ConvGeom& g, ActSpec act) {
  impl_->conv_fwd<ConvKind>(x, w, b, y, g, act);
}

void DnnlBackend::conv2d_backward_data(const float* dy, const float* w, float* dx,
                                       const ConvGeom& g) {
  impl_->conv_bwd_data<ConvKind>(dy, w, dx, g);
}

void DnnlBackend::conv2d_backward_weights(const float* x, const float* dy, float* dw, float* db,
                                          const ConvGeom& g, GradWrite write) {
  impl_->conv_bwd_weights<ConvKind>(x, dy, dw, db, g, write);
}

void DnnlBackend::deconv2d_forward(const float* x, const float* w, const float* b, float* y,
                                   const ConvGeom& g, ActSpec act) {
  // oneDNN 2.6 adds a deconvolution's bias and post-ops in a scalar reference loop (39 ms of a
  // 45 ms step for a 64->32 channel, 7x7->14x14 deconvolution at batch 128; its binary add with a
  // per-channel operand on blocked data is the reference one too), so they run here: a
  // vectorized add per channel plane, then the JIT eltwise in place.
  impl_->conv_fwd<DeconvKind>(x, w, nullptr, y, g, {});
  if (b) add_channel_bias(b, y, g.B, g.Cout, size_t(g.Ho) * size_t(g.Wo));
  act_forward(y, y, y_size(g), act);
}

void DnnlBackend::deconv2d_backward_data(const float* dy, const float* w, float* dx,
                                         const ConvGeom& g) {
  impl_->conv_bwd_data<DeconvKind>(dy, w, dx, g);
}

void DnnlBackend::deconv2d_backward_weights(const float* x, const float* dy, float* dw, float* db,
                                            const ConvGeom& g, GradWrite write) {
  impl_->conv_bwd_weights<DeconvKind>(x, dy, dw, db, g, write);
}

void DnnlBackend::act_forward(const float* x, float* y, size_t n, ActSpec act) {
  if (n == 0) return;
  if (act.kind == Act::none) {
    if (x != y) std::memcpy(y, x, n * sizeof(float));
    return;
  }
  guarded(
      op_name(Op::act_fwd), [&] { return describe_act(n, act); },
      [&] {
        Entry& e = impl_->get(act_key(Op::act_fwd, n, act),
                              [&] { return build_act_fwd(impl_->eng, n, act); });
        run(e, impl_->strm, {x, y});
      });
}

void DnnlBackend::act_backward(const float* y, const float* dy, float* dx, size_t n, ActSpec act) {
  if (n == 0) return;
  if (act.kind == Act::none) {
    if (dy != dx) std::memcpy(dx, dy, n * sizeof(float));
    return;
  }
  if (act.kind == Act::softplus) {
    // softplus' = sigmoid(x) = 1 - exp(-y); -expm1 keeps precision where y is tiny
    for (size_t i = 0; i < n; ++i) dx[i] = dy[i] * -std::expm1(-y[i]);
    return;
  }
  guarded(
      op_name(Op::act_bwd), [&] { return describe_act(n, act); },
      [&] {
        Entry& e = impl_->get(act_key(Op::act_bwd, n, act),
                              [&] { return build_act_bwd(impl_->eng, n, act); });
        run(e, impl_->strm, {y, dy, dx});
      });
}

std::string dnnl_matmul_impl(int M, int K, int N) {
  try {
    const dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    const Md x = plain({M, K}, Tag::ab), wt = Md({K, N}, f32, memory::dims{1, K}),
             y = plain({M, N}, Tag::ab);
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(x, wt, y), make_attr(), eng)
        .impl_info_str();
  } catch (const dnnl::error& e) {
    return std::string("none (") + e.what() + ")";
  }
}

std::string dnnl_library_version() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

std::string dnnl_cpu_isa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_mic:
      return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops:
      return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "all";
  }
}

}  // namespace distvae
