// Discriminator loss and the gradient of its output with respect to its input. The logistic
// terms are the Bernoulli log-likelihood on logits with labels 1 (class q) and 0 (class p):
// x*l - softplus(l) is -softplus(-l) for x = 1 and -softplus(l) for x = 0.
#include "core/models/discriminator.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace distvae {

template <class T>
Discriminator<T>::Discriminator(Backend<T>& be, const std::string& name, const Shape& input,
                                const std::vector<LayerSpec>& layers, int max_batch)
    : be_(be), max_batch_(max_batch), net_(be, name, input, layers, 2 * max_batch) {
  if (net_.output_shape().numel() != 1)
    throw NetworkSpecError(name +
                           ": a discriminator must end with one output per sample (T(u)), "
                           "but its output is " +
                           net_.output_shape().str());
  const size_t rows = 2 * size_t(max_batch);
  both_ = be.alloc(rows * size_t(input.numel()));
  labels_ = be.alloc(rows);
  ll_ = be.alloc(rows);
  dlogits_ = be.alloc(rows);
  host_t_.resize(rows);
  host_ll_.resize(rows);
}

template <class T>
Discriminator<T>::~Discriminator() {
  for (T* p : {both_, labels_, ll_, dlogits_}) be_.release(p);
  if (capped_) be_.release(capped_);
}

template <class T>
void Discriminator<T>::set_cap(double c) {
  if (!(c >= 0) || !std::isfinite(c))
    throw std::invalid_argument(net_.name() + ": cap " + std::to_string(c) +
                                " must be finite and >= 0");
  cap_ = c;
  if (cap_ == 0 || capped_) return;
  const size_t rows = 2 * size_t(max_batch_);
  capped_ = be_.alloc(rows);
  host_raw_.resize(rows);
  host_slope_.resize(rows);
  host_dt_.resize(rows);
}

// A handful of values per row, so on the host: the bound costs two small copies each way.
template <class T>
const T* Discriminator<T>::cap_output(const T* t, size_t n) {
  if (cap_ == 0) return t;
  be_.to_host(t, host_raw_.data(), n);
  for (size_t i = 0; i < n; ++i) {
    // d = c - t; c - softplus(d) with softplus(d) = max(d, 0) + log1p(exp(-|d|)) (no overflow),
    // and its derivative in t, sigmoid(d).
    const double d = cap_ - double(host_raw_[i]);
    host_raw_[i] = T(cap_ - (std::max(d, 0.0) + std::log1p(std::exp(-std::abs(d)))));
    host_slope_[i] = T(1.0 / (1.0 + std::exp(-d)));
  }
  be_.to_device(host_raw_.data(), capped_, n);
  return capped_;
}

template <class T>
void Discriminator<T>::cap_backward(T* dt, size_t n) {
  if (cap_ == 0) return;
  be_.to_host(dt, host_dt_.data(), n);
  for (size_t i = 0; i < n; ++i) host_dt_[i] *= host_slope_[i];
  be_.to_device(host_dt_.data(), dt, n);
}

template <class T>
DiscStats Discriminator<T>::loss_and_grad(const T* u_q, const T* u_p, int B,
                                          const GradReadyFn& on_ready) {
  if (B <= 0 || B > max_batch_)
    throw std::invalid_argument(net_.name() + ": batch " + std::to_string(B) + " outside [1, " +
                                std::to_string(max_batch_) + "]");
  const size_t F = size_t(input_size()), n = 2 * size_t(B);
  be_.fill(labels_, size_t(B), T(1));
  be_.fill(labels_ + B, size_t(B), T(0));
  // rows of u from row0 on: forward, per-class mean of the logistic loss (scale -1/B as each class
  // has B rows), backward writing or adding the parameter gradients.
  auto pass = [&](const T* u, size_t row0, int rows, ParamGrads grads, const GradReadyFn& ready) {
    const T* t = cap_output(net_.forward(u, rows), size_t(rows));
    be_.bernoulli_log_lik(t, labels_ + row0, ll_ + row0, dlogits_ + row0, T(-1.0 / B), rows, 1);
    be_.to_host(t, host_t_.data() + row0, size_t(rows));
    be_.to_host(ll_ + row0, host_ll_.data() + row0, size_t(rows));
    cap_backward(dlogits_ + row0, size_t(rows));
    net_.backward(dlogits_ + row0, rows, grads, false, ready);
  };
  if (net_.has_batchnorm()) {
    // One class per pass, as in DCGAN: over a mixed batch, batch norm's statistics would tell D
    // which batch is which, and D on the generator's batch alone would no longer judge it.
    pass(u_q, 0, B, ParamGrads::overwrite, nullptr);
    pass(u_p, size_t(B), B, ParamGrads::accumulate, on_ready);
  } else {
    be_.copy(u_q, both_, size_t(B) * F);
    be_.copy(u_p, both_ + size_t(B) * F, size_t(B) * F);
    pass(both_, 0, int(n), ParamGrads::overwrite, on_ready);
  }
  DiscStats s;
  int right = 0;
  for (size_t i = 0; i < n; ++i) {
    const bool q = i < size_t(B);
    s.loss -= double(host_ll_[i]) / B;
    right += (host_t_[i] > 0) == q ? 1 : 0;
    (q ? s.mean_t_q : s.mean_t_p) += double(host_t_[i]) / B;
  }
  s.accuracy = double(right) / double(n);
  return s;
}

template <class T>
void Discriminator<T>::output_and_input_grad(const T* u, int B, DiscOutput f, T scale, T* du,
                                             double* value) {
  if (B <= 0 || B > 2 * max_batch_)
    throw std::invalid_argument(net_.name() + ": batch " + std::to_string(B) + " outside [1, " +
                                std::to_string(2 * max_batch_) + "]");
  const size_t n = size_t(B);
  const T* t = cap_output(net_.forward(u, B), n);
  if (f == DiscOutput::logit) {
    if (value) {
      be_.to_host(t, host_t_.data(), n);
      for (size_t i = 0; i < n; ++i) value[i] = double(host_t_[i]);
    }
    if (du) be_.fill(dlogits_, n, scale);
  } else {
    // softplus(T) = -ll with label 0, softplus(-T) = -ll with label 1; the kernel's gradient is
    // d(s * ll)/dT, so s = -scale gives d(scale * value)/dT.
    be_.fill(labels_, n, f == DiscOutput::softplus_neg ? T(1) : T(0));
    be_.bernoulli_log_lik(t, labels_, ll_, du ? dlogits_ : nullptr, -scale, B, 1);
    if (value) {
      be_.to_host(ll_, host_ll_.data(), n);
      for (size_t i = 0; i < n; ++i) value[i] = -double(host_ll_[i]);
    }
  }
  if (!du) return;
  cap_backward(dlogits_, n);
  const T* dx = net_.backward(dlogits_, B, ParamGrads::none, true);
  be_.axpy(n * size_t(input_size()), T(1), dx, du);
}

template class Discriminator<float>;
template class Discriminator<double>;

}  // namespace distvae
