// cuDNN plans for the six convolution passes (see conv.h for the deconv-as-adjoint mapping).
#include "core/backends/cuda/conv.h"

#include <cuda_runtime.h>  // the typed cudaMalloc overload
#include <cudnn.h>

#include <array>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "core/backends/cuda/check.h"
#include "core/backends/cuda/kernels.h"
#include "core/hash.h"

namespace distvae::cuda {

namespace {

enum class Op : int {
  conv_fwd,
  conv_bwd_data,
  conv_bwd_weights,
  deconv_fwd,
  deconv_bwd_data,
  deconv_bwd_weights
};

const char* op_name(Op op) {
  switch (op) {
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
  }
  return "?";
}

bool is_deconv(Op op) {
  return op == Op::deconv_fwd || op == Op::deconv_bwd_data || op == Op::deconv_bwd_weights;
}

// Which cuDNN pass runs: a deconv's forward is the underlying conv's backward data, and so on.
enum class Pass { forward, backward_data, backward_filter };
Pass pass_of(Op op) {
  switch (op) {
    case Op::conv_fwd:
    case Op::deconv_bwd_data:
      return Pass::forward;
    case Op::conv_bwd_data:
    case Op::deconv_fwd:
      return Pass::backward_data;
    case Op::conv_bwd_weights:
    case Op::deconv_bwd_weights:
      return Pass::backward_filter;
  }
  return Pass::forward;
}

std::string describe(const ConvGeom& g) {
  auto s = [](int v) { return std::to_string(v); };
  return "x (" + s(g.B) + ", " + s(g.Cin) + ", " + s(g.H) + ", " + s(g.W) + ") -> y (" + s(g.B) +
         ", " + s(g.Cout) + ", " + s(g.Ho) + ", " + s(g.Wo) + "), K " + s(g.K) + " stride " +
         s(g.stride) + " pad " + s(g.pad);
}

struct Key {
  std::array<int, 11> v{};
  bool operator==(const Key&) const = default;
};

struct KeyHash {
  size_t operator()(const Key& k) const noexcept {
    return static_cast<size_t>(fnv1a(k.v.data(), sizeof k.v));
  }
};

// The underlying convolution of a plan: src -> dst with filter (dst channels, src channels, K, K).
struct Plan {
  cudnnTensorDescriptor_t src = nullptr, dst = nullptr;
  cudnnFilterDescriptor_t filter = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  int algo = 0;
  size_t workspace = 0;
  float* swapped = nullptr;  // deconv: the (Cin, Cout, K, K) filter or its gradient
  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {  // destructors do not throw: a failed destroy only leaks
    if (swapped) cudaFree(swapped);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (filter) cudnnDestroyFilterDescriptor(filter);
    if (dst) cudnnDestroyTensorDescriptor(dst);
    if (src) cudnnDestroyTensorDescriptor(src);
  }
};

// Deterministic algorithms that sum products directly (implicit or explicit GEMM), as the CPU
// backends do; FFT and Winograd variants round differently, the nondeterministic ones use
// atomics.
bool allowed(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM;
}
bool allowed(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
}
bool allowed(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
}

// The first heuristic pick that is allowed, deterministic and plain FP32 (no tensor-core TF32);
// `fallback` when the heuristic offers none such.
template <class Perf, class Algo>
Algo choose(const Perf* perf, int count, Algo fallback) {
  for (int i = 0; i < count; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC &&
        perf[i].mathType != CUDNN_TENSOR_OP_MATH &&
        perf[i].mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION && allowed(perf[i].algo))
      return perf[i].algo;
  return fallback;
}

}  // namespace

struct Convolutions::Impl {
  cudaStream_t stream;
  cudnnHandle_t handle = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  std::unordered_map<Key, std::unique_ptr<Plan>, KeyHash> plans;

  Plan& plan(Op op, const ConvGeom& g);
  void build(Plan& p, Op op, const ConvGeom& g);
  void reserve_workspace(size_t bytes);
};

void Convolutions::Impl::reserve_workspace(size_t bytes) {
  if (bytes <= workspace_bytes) return;
  // Planning time only: wait for work that may still use the old buffer.
  DISTVAE_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (workspace) DISTVAE_CUDA_CHECK(cudaFree(workspace));
  workspace = nullptr;
  workspace_bytes = 0;
  DISTVAE_CUDA_CHECK(cudaMalloc(&workspace, bytes));
  workspace_bytes = bytes;
}

void Convolutions::Impl::build(Plan& p, Op op, const ConvGeom& g) {
  const bool de = is_deconv(op);
  // conv: (B, Cin, H, W) -> (B, Cout, Ho, Wo); deconv's underlying conv runs the other way.
  const int src_c = de ? g.Cout : g.Cin, src_h = de ? g.Ho : g.H, src_w = de ? g.Wo : g.W;
  const int dst_c = de ? g.Cin : g.Cout, dst_h = de ? g.H : g.Ho, dst_w = de ? g.W : g.Wo;
  DISTVAE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.src));
  DISTVAE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.dst));
  DISTVAE_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p.filter));
  DISTVAE_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p.conv));
  DISTVAE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.src, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g.B,
                                                 src_c, src_h, src_w));
  DISTVAE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.dst, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g.B,
                                                 dst_c, dst_h, dst_w));
  DISTVAE_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p.filter, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                                 dst_c, src_c, g.K, g.K));
  DISTVAE_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
      p.conv, g.pad, g.pad, g.stride, g.stride, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  // FMA only: no TF32 tensor cores, so results agree with the CPU backends to float rounding.
  DISTVAE_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, CUDNN_FMA_MATH));

  // cuDNN takes the output size from the input; the layer's must be the same.
  int n = 0, c = 0, h = 0, w = 0;
  DISTVAE_CUDNN_CHECK(
      cudnnGetConvolution2dForwardOutputDim(p.conv, p.src, p.filter, &n, &c, &h, &w));
  if (h != dst_h || w != dst_w)
    throw std::runtime_error(
        de ? "output " + std::to_string(g.Ho) + "x" + std::to_string(g.Wo) +
                 " is not (H - 1) * stride - 2 * pad + K + out_pad with out_pad in [0, stride)"
           : "output " + std::to_string(g.Ho) + "x" + std::to_string(g.Wo) +
                 " is not (H + 2 * pad - K) / stride + 1 = " + std::to_string(h) + "x" +
                 std::to_string(w));

  constexpr int kMaxAlgos = 16;
  int returned = 0;
  switch (pass_of(op)) {
    case Pass::forward: {
      cudnnConvolutionFwdAlgoPerf_t perf[kMaxAlgos];
      DISTVAE_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(
          handle, p.src, p.filter, p.conv, p.dst, kMaxAlgos, &returned, perf));
      const auto algo = choose(perf, returned, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
      DISTVAE_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(handle, p.src, p.filter, p.conv,
                                                                  p.dst, algo, &p.workspace));
      p.algo = int(algo);
      break;
    }
    case Pass::backward_data: {
      cudnnConvolutionBwdDataAlgoPerf_t perf[kMaxAlgos];
      DISTVAE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
          handle, p.filter, p.dst, p.conv, p.src, kMaxAlgos, &returned, perf));
      const auto algo = choose(perf, returned, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1);
      DISTVAE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
          handle, p.filter, p.dst, p.conv, p.src, algo, &p.workspace));
      p.algo = int(algo);
      break;
    }
    case Pass::backward_filter: {
      cudnnConvolutionBwdFilterAlgoPerf_t perf[kMaxAlgos];
      DISTVAE_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
          handle, p.src, p.dst, p.conv, p.filter, kMaxAlgos, &returned, perf));
      const auto algo = choose(perf, returned, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
      DISTVAE_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
          handle, p.src, p.dst, p.conv, p.filter, algo, &p.workspace));
      p.algo = int(algo);
      break;
    }
  }
  reserve_workspace(p.workspace);
  if (de)
    DISTVAE_CUDA_CHECK(
        cudaMalloc(&p.swapped, sizeof(float) * size_t(g.Cin) * size_t(g.Cout) * size_t(g.K * g.K)));
}

Plan& Convolutions::Impl::plan(Op op, const ConvGeom& g) {
  const Key key{{int(op), g.B, g.Cin, g.H, g.W, g.Cout, g.Ho, g.Wo, g.K, g.stride, g.pad}};
  auto it = plans.find(key);
  if (it != plans.end()) return *it->second;
  auto p = std::make_unique<Plan>();
  try {
    build(*p, op, g);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("cuDNN ") + op_name(op) + " failed for " + describe(g) +
                             ": " + e.what() + "; check the layer's shapes and geometry");
  }
  return *plans.emplace(key, std::move(p)).first->second;
}

Convolutions::Convolutions(cudaStream_t stream) : impl_(std::make_unique<Impl>()) {
  impl_->stream = stream;
  DISTVAE_CUDNN_CHECK(cudnnCreate(&impl_->handle));
  DISTVAE_CUDNN_CHECK(cudnnSetStream(impl_->handle, stream));
}

Convolutions::~Convolutions() {
  impl_->plans.clear();
  if (impl_->workspace) cudaFree(impl_->workspace);
  if (impl_->handle) cudnnDestroy(impl_->handle);
}

size_t Convolutions::cached_plans() const {
  return impl_->plans.size();
}

namespace {
const float kOne = 1.0f, kZero = 0.0f;
}

void Convolutions::conv_forward(const float* x, const float* w, float* y, const ConvGeom& g) {
  Plan& p = impl_->plan(Op::conv_fwd, g);
  DISTVAE_CUDNN_CHECK(cudnnConvolutionForward(impl_->handle, &kOne, p.src, x, p.filter, w, p.conv,
                                              cudnnConvolutionFwdAlgo_t(p.algo), impl_->workspace,
                                              p.workspace, &kZero, p.dst, y));
}

void Convolutions::conv_backward_data(const float* dy, const float* w, float* dx,
                                      const ConvGeom& g) {
  Plan& p = impl_->plan(Op::conv_bwd_data, g);
  DISTVAE_CUDNN_CHECK(cudnnConvolutionBackwardData(
      impl_->handle, &kOne, p.filter, w, p.dst, dy, p.conv, cudnnConvolutionBwdDataAlgo_t(p.algo),
      impl_->workspace, p.workspace, &kZero, p.src, dx));
}

void Convolutions::conv_backward_weights(const float* x, const float* dy, float* dw,
                                         const ConvGeom& g, bool accumulate) {
  Plan& p = impl_->plan(Op::conv_bwd_weights, g);
  // beta = 1: cuDNN adds into dw; beta = 0 overwrites it.
  DISTVAE_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
      impl_->handle, &kOne, p.src, x, p.dst, dy, p.conv, cudnnConvolutionBwdFilterAlgo_t(p.algo),
      impl_->workspace, p.workspace, accumulate ? &kOne : &kZero, p.filter, dw));
}

void Convolutions::deconv_forward(const float* x, const float* w, float* y, const ConvGeom& g) {
  Plan& p = impl_->plan(Op::deconv_fwd, g);
  swap_leading_axes(w, p.swapped, g.Cout, g.Cin, g.K * g.K, false, impl_->stream);
  // The underlying conv maps y's shape (src) to x's (dst); its backward data takes x to y.
  DISTVAE_CUDNN_CHECK(cudnnConvolutionBackwardData(
      impl_->handle, &kOne, p.filter, p.swapped, p.dst, x, p.conv,
      cudnnConvolutionBwdDataAlgo_t(p.algo), impl_->workspace, p.workspace, &kZero, p.src, y));
}

void Convolutions::deconv_backward_data(const float* dy, const float* w, float* dx,
                                        const ConvGeom& g) {
  Plan& p = impl_->plan(Op::deconv_bwd_data, g);
  swap_leading_axes(w, p.swapped, g.Cout, g.Cin, g.K * g.K, false, impl_->stream);
  DISTVAE_CUDNN_CHECK(cudnnConvolutionForward(impl_->handle, &kOne, p.src, dy, p.filter, p.swapped,
                                              p.conv, cudnnConvolutionFwdAlgo_t(p.algo),
                                              impl_->workspace, p.workspace, &kZero, p.dst, dx));
}

void Convolutions::deconv_backward_weights(const float* x, const float* dy, float* dw,
                                           const ConvGeom& g, bool accumulate) {
  Plan& p = impl_->plan(Op::deconv_bwd_weights, g);
  // d filter (Cin, Cout, K, K) = the underlying conv's filter gradient with src = dy, dst grad =
  // x; then written or added into dw (Cout, Cin, K, K) with the channel axes swapped back.
  DISTVAE_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
      impl_->handle, &kOne, p.src, dy, p.dst, x, p.conv, cudnnConvolutionBwdFilterAlgo_t(p.algo),
      impl_->workspace, p.workspace, &kZero, p.filter, p.swapped));
  swap_leading_axes(p.swapped, dw, g.Cin, g.Cout, g.K * g.K, accumulate, impl_->stream);
}

}  // namespace distvae::cuda
