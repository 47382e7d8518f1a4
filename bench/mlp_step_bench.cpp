// Benchmark: forward + backward of the MLP 784-512-256-64 on the dnnl backend at batch 128, in
// images/s and GFLOP/s, next to oneDNN's own matmul GFLOP/s on the same GEMM shapes.
//
// Usage: mlp_step_bench [--iters N] [--repeats R] [--batch B]; OMP_NUM_THREADS sets the threads.
//
// FLOPs per step count 2*M*N*K per GEMM: the forward GEMMs of all 3 layers, the weight-gradient
// GEMMs of all 3, and the input-gradient GEMMs of layers 2 and 3 (the first layer's input gradient
// is not computed). Bias adds and activations are not counted (they are memory-bound and small).
// Each time is the median over R repeats of N calls.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/backend.h"
#include "core/network.h"
#include "core/rng.h"

namespace distvae {
namespace {

struct Options {
  int iters = 100;
  int repeats = 5;
  int batch = 128;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> int {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      const std::string v = argv[++i];
      size_t used = 0;
      int n = 0;
      try {
        n = std::stoi(v, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != v.size() || n < 1)
        throw std::runtime_error(a + ": expected a positive integer, got '" + v + "'");
      return n;
    };
    if (a == "--iters")
      o.iters = value();
    else if (a == "--repeats")
      o.repeats = value();
    else if (a == "--batch")
      o.batch = value();
    else if (a == "--help" || a == "-h") {
      std::printf("usage: mlp_step_bench [--iters N] [--repeats R] [--batch B]\n");
      std::exit(0);
    } else
      throw std::runtime_error("unknown option '" + a + "' (expected --iters, --repeats, --batch)");
  }
  return o;
}

// Seconds per call of f: median over `repeats` timings of `iters` calls, after `iters` warm-up
// calls.
double time_per_call(const std::function<void()>& f, int iters, int repeats) {
  for (int i = 0; i < std::max(3, iters / 4); ++i) f();
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) f();
    const auto t1 = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double>(t1 - t0).count() / iters);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::vector<float> normals(uint64_t index, size_t n) {
  std::vector<float> v(n);
  normal_fill(1, stream_id(rng_purpose::test, index), 0, n, v.data());
  return v;
}

// One GEMM of the step: C (M, N) = A (M, K) . B (K, N), with the layouts the layer uses.
struct Gemm {
  std::string what;
  int layer;  // 1-based
  enum Kind { fwd, bwd_data, bwd_weights } kind;
  int64_t M, N, K;
  double flops() const { return 2.0 * double(M) * double(N) * double(K); }
};

// Raw oneDNN matmul on one GEMM shape, built once: no bias, no activation, no accumulation.
// Operands are laid out as in the backend: x (B, In), w (Out, In), y/dy (B, Out), all row-major.
class RawMatmul {
 public:
  RawMatmul(const dnnl::engine& eng, const Gemm& g) : eng_(eng) {
    using dnnl::memory;
    using dt = memory::data_type;
    const int64_t M = g.M, N = g.N, K = g.K;
    memory::desc a, b, c({M, N}, dt::f32, memory::dims{N, 1});
    switch (g.kind) {
      case Gemm::fwd:  // y (B, Out) = x (B, In) . w^T: w (Out, In) read as (In, Out)
        a = memory::desc({M, K}, dt::f32, memory::dims{K, 1});
        b = memory::desc({K, N}, dt::f32, memory::dims{1, K});
        break;
      case Gemm::bwd_data:  // dx (B, In) = dy (B, Out) . w (Out, In)
        a = memory::desc({M, K}, dt::f32, memory::dims{K, 1});
        b = memory::desc({K, N}, dt::f32, memory::dims{N, 1});
        break;
      case Gemm::bwd_weights:  // dw (Out, In) = dy^T: dy (B, Out) read as (Out, B); . x (B, In)
        a = memory::desc({M, K}, dt::f32, memory::dims{1, M});
        b = memory::desc({K, N}, dt::f32, memory::dims{N, 1});
        break;
    }
    prim_ = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), eng_));
    const std::vector<float> av = normals(11, size_t(M * K)), bv = normals(12, size_t(K * N));
    ma_ = memory(a, eng_);
    mb_ = memory(b, eng_);
    mc_ = memory(c, eng_);
    std::memcpy(ma_.get_data_handle(), av.data(), av.size() * sizeof(float));
    std::memcpy(mb_.get_data_handle(), bv.data(), bv.size() * sizeof(float));
    args_ = {{DNNL_ARG_SRC, ma_}, {DNNL_ARG_WEIGHTS, mb_}, {DNNL_ARG_DST, mc_}};
  }
  void run(dnnl::stream& s) {
    prim_.execute(s, args_);
    s.wait();
  }

 private:
  const dnnl::engine& eng_;
  dnnl::primitive prim_;
  dnnl::memory ma_, mb_, mc_;
  std::unordered_map<int, dnnl::memory> args_;
};

int run_bench(const Options& o) {
  const int B = o.batch;
  const std::vector<int> widths = {784, 512, 256, 64};
  std::vector<LayerSpec> specs;
  for (size_t l = 1; l < widths.size(); ++l) {
    LayerSpec lin;
    lin.type = "linear";
    lin.out = widths[l];
    specs.push_back(lin);
    if (l + 1 < widths.size()) {
      LayerSpec relu;
      relu.type = "relu";
      specs.push_back(relu);
    }
  }

  std::unique_ptr<Backend<float>> be = make_backend("dnnl");
  Network<float> net(*be, "mlp", Shape{widths[0]}, specs, B);
  net.init(1);

  const std::vector<float> x = normals(1, size_t(B) * size_t(widths.front()));
  const std::vector<float> dy0 = normals(2, size_t(B) * size_t(widths.back()));
  std::vector<float> dy(dy0.size());

  // The GEMMs of one step.
  std::vector<Gemm> gemms;
  for (int l = 1; l < int(widths.size()); ++l) {
    const int64_t In = widths[size_t(l - 1)], Out = widths[size_t(l)];
    gemms.push_back({"forward          y = x.w^T", l, Gemm::fwd, B, Out, In});
    gemms.push_back({"backward weights dw = dy^T.x", l, Gemm::bwd_weights, Out, In, B});
    if (l > 1) gemms.push_back({"backward data    dx = dy.w", l, Gemm::bwd_data, B, In, Out});
  }
  double step_flops = 0;
  for (const Gemm& g : gemms) step_flops += g.flops();

  const int threads = omp_get_max_threads();
  const char* env = std::getenv("OMP_NUM_THREADS");
  std::printf(
      "mlp_step_bench: MLP 784-512-256-64 (linear+relu, linear+relu, linear), batch %d, "
      "backend %s\n",
      B, be->name().c_str());
  std::printf("threads: %d (OMP_NUM_THREADS=%s); median of %d repeats x %d iterations\n", threads,
              env ? env : "unset", o.repeats, o.iters);
  std::printf(
      "step = forward + backward (param grads overwritten, no dx for layer 1, "
      "no optimizer); %.1f MFLOP per step in %zu GEMMs\n\n",
      step_flops * 1e-6, gemms.size());

  // ---- the network step ----
  auto step = [&] {
    net.forward(x.data(), B);
    std::memcpy(dy.data(), dy0.data(), dy.size() * sizeof(float));
    net.backward(dy.data(), B, ParamGrads::overwrite, /*need_dx=*/false);
  };
  const double t_step = time_per_call(step, o.iters, o.repeats);
  const double step_gflops = step_flops / t_step * 1e-9;

  // ---- the same step as bare backend calls in the network's order (no Network bookkeeping) ----
  // Separates the network's own overhead from the cache effects of running the GEMMs in sequence.
  const int L = int(widths.size()) - 1;
  using Buffers = std::vector<std::vector<float>>;
  Buffers act(size_t(L) + 1), grad(size_t(L) + 1);
  Buffers w(static_cast<size_t>(L)), b(static_cast<size_t>(L));
  Buffers dw(static_cast<size_t>(L)), db(static_cast<size_t>(L));
  for (int l = 0; l <= L; ++l) {
    act[size_t(l)] = normals(30 + uint64_t(l), size_t(B) * size_t(widths[size_t(l)]));
    grad[size_t(l)].resize(act[size_t(l)].size());
  }
  for (int l = 0; l < L; ++l) {
    const size_t n = size_t(widths[size_t(l)]) * size_t(widths[size_t(l + 1)]);
    w[size_t(l)] = normals(40 + uint64_t(l), n);
    for (float& v : w[size_t(l)]) v *= 0.05f;
    b[size_t(l)].assign(size_t(widths[size_t(l + 1)]), 0.01f);
    dw[size_t(l)].resize(n);
    db[size_t(l)].resize(size_t(widths[size_t(l + 1)]));
  }
  auto sequence = [&] {
    for (int l = 0; l < L; ++l)  // act[l] (B, In) -> act[l + 1] (B, Out)
      be->linear_forward(act[size_t(l)].data(), w[size_t(l)].data(), b[size_t(l)].data(),
                         act[size_t(l + 1)].data(), B, widths[size_t(l)], widths[size_t(l + 1)],
                         ActSpec{l + 1 < L ? Act::relu : Act::none, 0.0f});
    std::memcpy(grad[size_t(L)].data(), dy0.data(), dy0.size() * sizeof(float));
    for (int l = L - 1; l >= 0; --l) {
      const int In = widths[size_t(l)], Out = widths[size_t(l + 1)];
      float* g = grad[size_t(l + 1)].data();  // dL/d act[l + 1]
      if (l + 1 < L)
        be->act_backward(act[size_t(l + 1)].data(), g, g, size_t(B) * size_t(Out),
                         ActSpec{Act::relu, 0.0f});
      if (l > 0)
        be->linear_backward_data(g, w[size_t(l)].data(), grad[size_t(l)].data(), B, In, Out);
      be->linear_backward_weights(act[size_t(l)].data(), g, dw[size_t(l)].data(),
                                  db[size_t(l)].data(), B, In, Out, GradWrite::overwrite);
    }
  };
  const double t_seq = time_per_call(sequence, o.iters, o.repeats);

  // ---- each GEMM alone: raw oneDNN matmul, and the backend's linear_* call ----
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  std::vector<double> t_raw, t_be;
  for (const Gemm& g : gemms) {
    RawMatmul mm(eng, g);
    t_raw.push_back(time_per_call([&] { mm.run(strm); }, o.iters, o.repeats));

    // The same GEMM through the backend, with the layer's bias / activation / accumulation.
    const int In = widths[size_t(g.layer - 1)], Out = widths[size_t(g.layer)];
    const bool relu = g.layer + 1 < int(widths.size());
    const std::vector<float> xin = normals(21, size_t(B) * size_t(In));
    const std::vector<float> wt = normals(22, size_t(Out) * size_t(In));
    const std::vector<float> dout = normals(23, size_t(B) * size_t(Out));
    std::vector<float> bias(size_t(Out), 0.1f);
    std::vector<float> out(size_t(B) * size_t(Out)), din(size_t(B) * size_t(In));
    std::vector<float> dwt(size_t(Out) * size_t(In)), dbt(static_cast<size_t>(Out));
    std::function<void()> f;
    switch (g.kind) {
      case Gemm::fwd:
        f = [&] {
          be->linear_forward(xin.data(), wt.data(), bias.data(), out.data(), B, In, Out,
                             ActSpec{relu ? Act::relu : Act::none, 0.0f});
        };
        break;
      case Gemm::bwd_data:
        f = [&] { be->linear_backward_data(dout.data(), wt.data(), din.data(), B, In, Out); };
        break;
      case Gemm::bwd_weights:
        f = [&] {
          be->linear_backward_weights(xin.data(), dout.data(), dwt.data(), dbt.data(), B, In, Out,
                                      GradWrite::overwrite);
        };
        break;
    }
    t_be.push_back(time_per_call(f, o.iters, o.repeats));
  }

  std::printf("%-4s %-30s %5s %5s %5s %8s %12s %12s\n", "layer", "GEMM", "M", "N", "K", "MFLOP",
              "raw GFLOP/s", "backend GF/s");
  double sum_raw = 0, sum_be = 0;
  for (size_t i = 0; i < gemms.size(); ++i) {
    const Gemm& g = gemms[i];
    sum_raw += t_raw[i];
    sum_be += t_be[i];
    std::printf("%-5d %-30s %5lld %5lld %5lld %8.2f %12.1f %12.1f\n", g.layer, g.what.c_str(),
                static_cast<long long>(g.M), static_cast<long long>(g.N),
                static_cast<long long>(g.K), g.flops() * 1e-6, g.flops() / t_raw[i] * 1e-9,
                g.flops() / t_be[i] * 1e-9);
  }
  const double raw_gflops = step_flops / sum_raw * 1e-9;
  const double be_gflops = step_flops / sum_be * 1e-9;
  std::printf("\n%-44s %10.3f ms %8.1f GFLOP/s\n",
              "raw oneDNN matmul, the step's GEMMs alone:", sum_raw * 1e3, raw_gflops);
  std::printf("%-44s %10.3f ms %8.1f GFLOP/s\n",
              "backend linear_* calls, the same shapes:", sum_be * 1e3, be_gflops);
  std::printf("%-44s %10.3f ms %8.1f GFLOP/s\n", "backend calls in the step's order:", t_seq * 1e3,
              step_flops / t_seq * 1e-9);
  std::printf("%-44s %10.3f ms %8.1f GFLOP/s %10.0f images/s\n",
              "network forward + backward step:", t_step * 1e3, step_gflops, double(B) / t_step);
  std::printf(
      "\nratio step / raw matmul: %.3f    (backend / raw %.3f, in sequence / alone %.3f, "
      "network / in sequence %.3f)\n",
      step_gflops / raw_gflops, be_gflops / raw_gflops, sum_be / t_seq, t_seq / t_step);
  return 0;
}

}  // namespace
}  // namespace distvae

int main(int argc, char** argv) {
  try {
    return distvae::run_bench(distvae::parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mlp_step_bench: %s\n", e.what());
    return 1;
  }
}
