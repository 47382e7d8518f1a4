// cuBLASLt plans: one per (shape, transposes, epilogue, accumulate or not, pointer alignments).
#include "core/backends/cuda/matmul.h"

#include <array>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "core/backends/cuda/check.h"
#include "core/hash.h"

namespace distvae::cuda {

namespace {

// 32 MiB: what cuBLAS recommends for Hopper; also plenty for Ampere.
constexpr size_t kWorkspaceBytes = size_t(32) << 20;

struct Key {
  std::array<int64_t, 13> v{};
  bool operator==(const Key&) const = default;
};

struct KeyHash {
  size_t operator()(const Key& k) const noexcept {
    return static_cast<size_t>(fnv1a(k.v.data(), sizeof k.v));
  }
};

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {  // destructors do not throw: a failed destroy only leaks a descriptor
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

std::string describe(bool ta, bool tb, int m, int n, int k, cublasLtEpilogue_t epi) {
  return std::string("GEMM ") + (ta ? "T" : "N") + (tb ? "T" : "N") + " m " + std::to_string(m) +
         " n " + std::to_string(n) + " k " + std::to_string(k) + " epilogue " +
         std::to_string(int(epi));
}

}  // namespace

struct Matmul::Impl {
  cudaStream_t stream;
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  std::unordered_map<Key, std::unique_ptr<Plan>, KeyHash> plans;
};

Matmul::Matmul(cudaStream_t stream) : impl_(std::make_unique<Impl>()) {
  impl_->stream = stream;
  DISTVAE_CUBLAS_CHECK(cublasLtCreate(&impl_->handle));
  DISTVAE_CUDA_CHECK(cudaMalloc(&impl_->workspace, kWorkspaceBytes));
}

Matmul::~Matmul() {
  impl_->plans.clear();
  if (impl_->workspace) cudaFree(impl_->workspace);
  if (impl_->handle) cublasLtDestroy(impl_->handle);
}

size_t Matmul::cached_plans() const {
  return impl_->plans.size();
}

void Matmul::gemm(bool ta, bool tb, int m, int n, int k, const float* A, int lda, const float* B,
                  int ldb, float* D, int ldd, float beta, cublasLtEpilogue_t epilogue,
                  const float* bias) {
  const int align_a = pointer_alignment(A), align_b = pointer_alignment(B),
            align_d = pointer_alignment(D);
  const Key key{
      {ta, tb, m, n, k, lda, ldb, ldd, beta != 0.0f, int64_t(epilogue), align_a, align_b, align_d}};
  auto it = impl_->plans.find(key);
  if (it == impl_->plans.end()) {
    auto p = std::make_unique<Plan>();
    const cublasOperation_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    DISTVAE_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    DISTVAE_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a));
    DISTVAE_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b));
    DISTVAE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                        &epilogue, sizeof epilogue));
    // Stored shapes: rows x cols with leading dimension = rows' stride (column-major).
    DISTVAE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_32F, uint64_t(ta ? k : m),
                                                    uint64_t(ta ? m : k), lda));
    DISTVAE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_32F, uint64_t(tb ? n : k),
                                                    uint64_t(tb ? k : n), ldb));
    DISTVAE_CUBLAS_CHECK(
        cublasLtMatrixLayoutCreate(&p->d, CUDA_R_32F, uint64_t(m), uint64_t(n), ldd));

    cublasLtMatmulPreference_t pref = nullptr;
    DISTVAE_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t ws = kWorkspaceBytes;
    const uint32_t al_a = uint32_t(align_a), al_b = uint32_t(align_b), al_d = uint32_t(align_d);
    cublasLtMatmulHeuristicResult_t result{};
    int returned = 0;
    const cublasStatus_t rc = [&] {
      cublasStatus_t s = cublasLtMatmulPreferenceSetAttribute(
          pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
      // The caller's pointers may sit anywhere in a flat parameter buffer: tell the heuristic how
      // aligned they really are (it assumes 256 bytes otherwise).
      if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                 &al_a, sizeof al_a);
      if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                 &al_b, sizeof al_b);
      if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                 &al_d, sizeof al_d);
      if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                 &al_d, sizeof al_d);
      if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulAlgoGetHeuristic(impl_->handle, p->desc, p->a, p->b, p->d, p->d, pref, 1,
                                           &result, &returned);
      return s;
    }();
    cublasLtMatmulPreferenceDestroy(pref);
    if (rc != CUBLAS_STATUS_SUCCESS || returned == 0)
      throw std::runtime_error("cuBLASLt has no algorithm for " +
                               describe(ta, tb, m, n, k, epilogue) + " (" +
                               cublasLtGetStatusString(rc) + ")");
    p->algo = result.algo;
    it = impl_->plans.emplace(key, std::move(p)).first;
  }
  Plan& p = *it->second;
  if (epilogue == CUBLASLT_EPILOGUE_BIAS || epilogue == CUBLASLT_EPILOGUE_RELU_BIAS)
    DISTVAE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                        &bias, sizeof bias));
  const float alpha = 1.0f;
  DISTVAE_CUBLAS_CHECK(cublasLtMatmul(impl_->handle, p.desc, &alpha, A, p.a, B, p.b, &beta, D, p.d,
                                      D, p.d, &p.algo, impl_->workspace, kWorkspaceBytes,
                                      impl_->stream));
}

}  // namespace distvae::cuda
