// Optimizers over a flat parameter span: Adam (AdamW decay) and SGD with momentum, the optimizer
// state they carry, and global gradient-norm clipping. The update loops live in the backend.
//
// Every rank holds the same parameters and, after the all-reduce, the same gradients, so running
// these functions on every rank keeps the replicas identical without further communication.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/backend.h"

namespace distvae {

struct OptimizerConfig {
  std::string kind = "adam";  // "adam" or "sgd"
  double lr = 1e-3;           // the base rate; optimizer_step takes the scheduled one
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adam
  double weight_decay = 0.0;          // adam: decoupled, p -= lr * wd * p; sgd: L2, g += wd * p
  double momentum = 0.0;              // sgd
  std::string schedule = "constant";  // "constant" or "cosine" (from lr down to lr_min)
  double lr_min = 0.0;                // cosine: the rate at the end of the run
};

// The learning rate at progress in [0, 1] of the run: lr, or for "cosine"
// lr_min + (lr - lr_min) (1 + cos(pi progress)) / 2 (progress beyond 1 counts as 1).
double scheduled_lr(const OptimizerConfig& cfg, double progress);

// Throws std::runtime_error naming the bad field and its allowed range.
void validate_optimizer_config(const OptimizerConfig& cfg);

// The optimizer's per-parameter state, in the backend's memory: Adam keeps its first moment in m
// and second in v; SGD keeps its velocity in m (v is null). step counts the updates taken (Adam's
// bias correction uses it; a checkpoint stores m, v and step).
template <class T>
struct OptimizerState {
  T* m = nullptr;
  T* v = nullptr;
  size_t n = 0;
  int64_t step = 0;
};

// Owns an OptimizerState's buffers: allocated (zeroed) through the backend, released through it.
// Move-only; the backend must outlive it.
template <class T>
class OptimizerStateOwner {
 public:
  OptimizerStateOwner(Backend<T>& backend, const OptimizerConfig& cfg, size_t n);
  ~OptimizerStateOwner();
  OptimizerStateOwner(OptimizerStateOwner&& other) noexcept;
  OptimizerStateOwner& operator=(OptimizerStateOwner&& other) noexcept;
  OptimizerStateOwner(const OptimizerStateOwner&) = delete;
  OptimizerStateOwner& operator=(const OptimizerStateOwner&) = delete;

  OptimizerState<T>& state() { return state_; }
  const OptimizerState<T>& state() const { return state_; }

 private:
  void release();
  Backend<T>* backend_ = nullptr;
  OptimizerState<T> state_;
};

// One update of params (n values) from grads with learning rate lr (the schedule's value; cfg.lr is
// not read). Increments state.step first, so the first update is step 1.
//   adam: m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//         p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + lr * wd * p
//   sgd:  g' = g + wd * p;  v = mu v + g';  p -= lr * v      (PyTorch's momentum, no dampening)
// Throws when n differs from the state's size or the state lacks a buffer the kind needs.
template <class T>
void optimizer_step(Backend<T>& backend, const OptimizerConfig& cfg, OptimizerState<T>& state,
                    T* params, const T* grads, size_t n, double lr);

// Global L2 norm ||g|| = sqrt(sum_i g_i^2) over the whole flat buffer (summed in double). When
// max_norm > 0 and ||g|| > max_norm, scales g by max_norm / ||g|| in place so its norm becomes
// max_norm. Returns the norm before clipping. A non-finite norm is returned without touching g
// (scaling would turn every gradient into NaN): the caller sees it and skips the step.
template <class T>
double clip_grad_norm(Backend<T>& backend, T* grads, size_t n, double max_norm);

}  // namespace distvae
