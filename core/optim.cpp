// Optimizers over a flat parameter span: config checks, state ownership, the step and clipping.
#include "core/optim.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <utility>

namespace distvae {

namespace {

bool is_adam(const OptimizerConfig& cfg) {
  return cfg.kind == "adam";
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("optimizer: " + what);
}

std::string num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

}  // namespace

double scheduled_lr(const OptimizerConfig& cfg, double progress) {
  if (cfg.schedule == "cosine")
    return cfg.lr_min +
           0.5 * (cfg.lr - cfg.lr_min) * (1.0 + std::cos(M_PI * std::min(1.0, progress)));
  return cfg.lr;
}

void validate_optimizer_config(const OptimizerConfig& cfg) {
  require(cfg.kind == "adam" || cfg.kind == "sgd",
          "kind is '" + cfg.kind + "'; expected 'adam' or 'sgd'");
  require(std::isfinite(cfg.lr) && cfg.lr >= 0, "lr is " + num(cfg.lr) + "; expected >= 0");
  require(std::isfinite(cfg.weight_decay) && cfg.weight_decay >= 0,
          "weight_decay is " + num(cfg.weight_decay) + "; expected >= 0");
  if (is_adam(cfg)) {
    // beta = 1 would make the bias correction 1 / (1 - beta^t) divide by zero.
    require(cfg.beta1 >= 0 && cfg.beta1 < 1, "beta1 is " + num(cfg.beta1) + "; expected in [0, 1)");
    require(cfg.beta2 >= 0 && cfg.beta2 < 1, "beta2 is " + num(cfg.beta2) + "; expected in [0, 1)");
    require(std::isfinite(cfg.eps) && cfg.eps > 0, "eps is " + num(cfg.eps) + "; expected > 0");
  } else {
    require(cfg.momentum >= 0 && cfg.momentum < 1,
            "momentum is " + num(cfg.momentum) + "; expected in [0, 1)");
  }
}

// ---- state ownership ----

template <class T>
OptimizerStateOwner<T>::OptimizerStateOwner(Backend<T>& backend, const OptimizerConfig& cfg,
                                            size_t n)
    : backend_(&backend) {
  validate_optimizer_config(cfg);
  state_.n = n;
  if (n == 0) return;
  // SGD always gets a velocity buffer, even at momentum 0, so the state (and a checkpoint of it)
  // has the same layout whatever the momentum.
  state_.m = backend.alloc(n);
  if (is_adam(cfg)) {
    try {
      state_.v = backend.alloc(n);
    } catch (...) {
      backend.release(state_.m);
      throw;
    }
  }
}

template <class T>
void OptimizerStateOwner<T>::release() {
  if (backend_ == nullptr) return;
  if (state_.m) backend_->release(state_.m);
  if (state_.v) backend_->release(state_.v);
  state_ = OptimizerState<T>{};
}

template <class T>
OptimizerStateOwner<T>::~OptimizerStateOwner() {
  release();
}

template <class T>
OptimizerStateOwner<T>::OptimizerStateOwner(OptimizerStateOwner&& other) noexcept
    : backend_(std::exchange(other.backend_, nullptr)),
      state_(std::exchange(other.state_, OptimizerState<T>{})) {}

template <class T>
OptimizerStateOwner<T>& OptimizerStateOwner<T>::operator=(OptimizerStateOwner&& other) noexcept {
  if (this != &other) {
    release();
    backend_ = std::exchange(other.backend_, nullptr);
    state_ = std::exchange(other.state_, OptimizerState<T>{});
  }
  return *this;
}

// ---- the step ----

template <class T>
void optimizer_step(Backend<T>& backend, const OptimizerConfig& cfg, OptimizerState<T>& state,
                    T* params, const T* grads, size_t n, double lr) {
  // Checks are plain ifs: the messages are built only on failure, so a step allocates nothing.
  if (n != state.n)
    throw std::runtime_error("optimizer: step over " + std::to_string(n) +
                             " parameters but the state holds " + std::to_string(state.n) +
                             "; create the optimizer state for the same parameter buffer");
  if (!(std::isfinite(lr) && lr >= 0))
    throw std::runtime_error("optimizer: learning rate is " + num(lr) + "; expected >= 0");
  if (is_adam(cfg)) {
    if (n > 0 && (state.m == nullptr || state.v == nullptr))
      throw std::runtime_error(
          "optimizer: adam needs m and v buffers; the state was created for another kind");
    ++state.step;
    AdamArgs a;
    a.lr = lr;
    a.beta1 = cfg.beta1;
    a.beta2 = cfg.beta2;
    a.eps = cfg.eps;
    a.weight_decay = cfg.weight_decay;
    a.step = state.step;
    if (n > 0) backend.adam_update(params, grads, state.m, state.v, n, a);
  } else if (cfg.kind == "sgd") {
    if (n > 0 && state.m == nullptr)
      throw std::runtime_error("optimizer: sgd needs a velocity buffer; the state is empty");
    ++state.step;
    SgdArgs a;
    a.lr = lr;
    a.momentum = cfg.momentum;
    a.weight_decay = cfg.weight_decay;
    if (n > 0) backend.sgd_update(params, grads, state.m, n, a);
  } else {
    validate_optimizer_config(cfg);  // throws, naming the bad kind
  }
}

// ---- clipping ----

template <class T>
double clip_grad_norm(Backend<T>& backend, T* grads, size_t n, double max_norm) {
  if (n == 0) return 0.0;
  const double norm = std::sqrt(backend.sum_squares(grads, n));
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm)
    backend.scale(n, static_cast<T>(max_norm / norm), grads);
  return norm;
}

// ---- instantiations ----

template class OptimizerStateOwner<float>;
template class OptimizerStateOwner<double>;
template void optimizer_step<float>(Backend<float>&, const OptimizerConfig&, OptimizerState<float>&,
                                    float*, const float*, size_t, double);
template void optimizer_step<double>(Backend<double>&, const OptimizerConfig&,
                                     OptimizerState<double>&, double*, const double*, size_t,
                                     double);
template double clip_grad_norm<float>(Backend<float>&, float*, size_t, double);
template double clip_grad_norm<double>(Backend<double>&, double*, size_t, double);

}  // namespace distvae
