#include "launch/cli/bench_reference.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <string>

namespace distvae {

namespace {

using Clock = std::chrono::steady_clock;

// Median seconds per call of f over `loops` loops of about loop_s each; `sync` (a 1-value
// read-back) ends each loop so that an asynchronous backend's work is inside the loop.
double seconds_per_call(const std::function<void()>& f, const std::function<void()>& sync,
                        int loops, double loop_s) {
  auto loop = [&](int n) {
    const auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) f();
    sync();
    return std::chrono::duration<double>(Clock::now() - t0).count() / n;
  };
  loop(10);  // primitive creation, first touch
  const int iters = std::clamp(int(loop_s / std::max(loop(10), 1e-9)), 10, 100000);
  std::vector<double> t;
  for (int r = 0; r < loops; ++r) t.push_back(loop(iters));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Backend buffers for one timing, released on scope exit.
struct Buffers {
  Backend<float>& be;
  std::vector<float*> p;
  float* add(size_t n, float v) {
    p.push_back(be.alloc(n));
    be.fill(p.back(), n, v);
    return p.back();
  }
  ~Buffers() {
    for (float* q : p) be.release(q);
  }
};

enum class Pass { forward, input_grad, weight_grad };

bool is_heavy(const Layer& l) {
  return l.kind == LayerKind::linear || l.kind == LayerKind::conv2d ||
         l.kind == LayerKind::deconv2d;
}

// 2 x multiply-adds of one pass of layer l over `rows` rows (the three passes cost the same).
double pass_flops(const Layer& l, int rows) {
  if (l.kind == LayerKind::linear) return 2.0 * rows * double(l.in[0]) * double(l.out[0]);
  const ConvGeom& g = l.geom;
  const double per_row = l.kind == LayerKind::conv2d ? double(l.out.numel()) * g.Cin * g.K * g.K
                                                     : double(l.in.numel()) * g.Cout * g.K * g.K;
  return 2.0 * rows * per_row;
}

// Seconds of one pass of layer l over `rows` rows, alone. Linear layers as plain matmuls of the
// pass's shape (M x K x N); convolutions through the backend's own calls, without bias or
// activation.
double pass_seconds(Backend<float>& be, const Layer& l, int rows, Pass pass) {
  constexpr int kLoops = 3;
  constexpr double kLoopSeconds = 0.02;
  if (l.kind == LayerKind::linear) {
    const int In = int(l.in[0]), Out = int(l.out[0]);
    if (pass == Pass::forward) return matmul_seconds(be, rows, In, Out, kLoops, kLoopSeconds);
    if (pass == Pass::input_grad) return matmul_seconds(be, rows, Out, In, kLoops, kLoopSeconds);
    return matmul_seconds(be, Out, rows, In, kLoops, kLoopSeconds);
  }
  ConvGeom g = l.geom;
  g.B = rows;
  Buffers b{be, {}};
  float* x = b.add(size_t(rows) * size_t(l.in.numel()), 0.5f);
  float* y = b.add(size_t(rows) * size_t(l.out.numel()), 0.01f);
  float* w = b.add(size_t(g.Cout) * g.Cin * g.K * g.K, 0.01f);
  float sink = 0;
  const bool conv = l.kind == LayerKind::conv2d;
  std::function<void()> f;
  if (pass == Pass::forward)
    f = [&] {
      conv ? be.conv2d_forward(x, w, nullptr, y, g, {})
           : be.deconv2d_forward(x, w, nullptr, y, g, {});
    };
  else if (pass == Pass::input_grad)
    f = [&] { conv ? be.conv2d_backward_data(y, w, x, g) : be.deconv2d_backward_data(y, w, x, g); };
  else
    f = [&] {
      conv ? be.conv2d_backward_weights(x, y, w, nullptr, g, GradWrite::overwrite)
           : be.deconv2d_backward_weights(x, y, w, nullptr, g, GradWrite::overwrite);
    };
  return seconds_per_call(
      f, [&] { be.to_host(x, &sink, 1); }, kLoops, kLoopSeconds);
}

// "linear 784->512 forward (128 x 784 x 512)": M x K x N for linear layers, the geometry for
// convolutions.
std::string describe(const Layer& l, int rows, Pass pass) {
  const char* p = pass == Pass::forward      ? "forward"
                  : pass == Pass::input_grad ? "input gradient"
                                             : "weight gradient";
  auto s = [](int64_t v) { return std::to_string(v); };
  if (l.kind == LayerKind::linear) {
    const int64_t In = l.in[0], Out = l.out[0];
    const std::string mkn = pass == Pass::forward      ? s(rows) + " x " + s(In) + " x " + s(Out)
                            : pass == Pass::input_grad ? s(rows) + " x " + s(Out) + " x " + s(In)
                                                       : s(Out) + " x " + s(rows) + " x " + s(In);
    return "linear " + s(In) + "->" + s(Out) + " " + p + " (" + mkn + ")";
  }
  const ConvGeom& g = l.geom;
  return std::string(l.kind == LayerKind::conv2d ? "conv2d " : "deconv2d ") + s(g.Cin) + "x" +
         s(g.H) + "x" + s(g.W) + "->" + s(g.Cout) + "x" + s(g.Ho) + "x" + s(g.Wo) + " k" + s(g.K) +
         " s" + s(g.stride) + " " + p + " (batch " + s(rows) + ")";
}

// Calls fn(layer, pass, count) for every heavy pass of `use` (count: passes per step).
template <class Fn>
void for_each_pass(const NetUse& use, Fn&& fn) {
  bool first = true;
  for (const Layer& l : use.net->layers()) {
    if (!is_heavy(l)) {
      first = first && l.kind != LayerKind::batchnorm;  // a batch norm first takes the input
      continue;
    }
    fn(l, Pass::forward);
    if (use.backward && (use.first_dx || !first)) fn(l, Pass::input_grad);
    if (use.backward && use.weight_grads) fn(l, Pass::weight_grad);
    first = false;
  }
}

}  // namespace

double matmul_seconds(Backend<float>& be, int M, int K, int N, int loops, double loop_s) {
  Buffers b{be, {}};
  const float* x = b.add(size_t(M) * K, 0.5f);
  const float* w = b.add(size_t(N) * K, 0.01f);
  float* y = b.add(size_t(M) * N, 0.0f);
  float sink = 0;
  return seconds_per_call([&] { be.linear_forward(x, w, nullptr, y, M, K, N, ActSpec{}); },
                          [&] { be.to_host(y, &sink, 1); }, loops, loop_s);
}

double heavy_flops(const std::vector<NetUse>& uses) {
  double flops = 0;
  for (const NetUse& u : uses)
    for_each_pass(u, [&](const Layer& l, Pass) { flops += u.passes * pass_flops(l, u.rows); });
  return flops;
}

HeavyReference heavy_reference(Backend<float>& be, const std::vector<NetUse>& uses) {
  // Key: kind, pass, rows and the layer's shape numbers; equal keys are timed once.
  using Key = std::array<int64_t, 12>;
  std::map<Key, size_t> timed;  // -> index in r.each
  HeavyReference r;
  for (const NetUse& u : uses)
    for_each_pass(u, [&](const Layer& l, Pass pass) {
      const ConvGeom& g = l.geom;
      const Key key{int64_t(l.kind), int64_t(pass), u.rows, l.in.numel(), l.out.numel(), g.Cin,
                    g.Cout,          g.H,           g.W,    g.K,          g.stride,      g.pad};
      auto it = timed.find(key);
      if (it == timed.end()) {
        it = timed.emplace(key, r.each.size()).first;
        r.each.push_back({describe(l, u.rows, pass), pass_flops(l, u.rows),
                          pass_seconds(be, l, u.rows, pass), 0});
      }
      HeavyOp& op = r.each[it->second];
      op.calls += u.passes;
      r.seconds += u.passes * op.seconds;
      r.flops += u.passes * op.flops;
    });
  return r;
}

}  // namespace distvae
