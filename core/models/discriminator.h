// The logistic discriminator of docs/design.md section 3: a network T(u) with one output and
// D(u) = sigmoid(T(u)). Trained on two classes with per-class means, its optimum is the log density
// ratio T*(u) = log q(u)/p(u) of the class-1 density q over the class-0 density p. The implicit
// prior and the adversarial autoencoder use it on latent codes, the GAN on images.
#pragma once

#include <string>
#include <vector>

#include "core/backend.h"
#include "core/network.h"

namespace distvae {

// Per-class means over the rows of one call.
struct DiscStats {
  double loss = 0;      // mean_q softplus(-T) + mean_p softplus(T)
  double accuracy = 0;  // fraction of rows on the right side of T = 0, both classes together
  double mean_t_q = 0, mean_t_p = 0;
};

// What the discriminator's output contributes to another network's loss, per row.
enum class DiscOutput {
  logit,         // T(u): the implicit prior's log density ratio
  softplus,      // softplus(T(u)) = -log(1 - D(u)): the AAE encoder's term
  softplus_neg,  // softplus(-T(u)) = -log D(u): the GAN generator's non-saturating loss
};

template <class T>
class Discriminator {
 public:
  // input: per-sample shape. max_batch bounds the rows per class.
  Discriminator(Backend<T>& be, const std::string& name, const Shape& input,
                const std::vector<LayerSpec>& layers, int max_batch);
  Discriminator(const Discriminator&) = delete;
  Discriminator& operator=(const Discriminator&) = delete;
  ~Discriminator();

  Network<T>& net() { return net_; }
  // With c > 0, T(u) = c - softplus(c - T_net(u)): the network's output smoothly bounded above by
  // c (0: no bound). Bounding T bounds Z = E_p[exp T] by exp(c) and the reward E_q[T] an encoder
  // can collect from T's errors; every use of T (loss, input gradient, AIS) sees the bounded T.
  void set_cap(double c);
  double cap() const { return cap_; }
  Backend<T>& backend() { return be_; }
  int input_size() const { return int(net_.input_shape().numel()); }

  // loss = mean_q softplus(-T(u_q)) + mean_p softplus(T(u_p)), B rows of each class, in the
  // backend's memory. Zeroes and fills the network's parameter gradients (reported through
  // on_ready as they become final).
  DiscStats loss_and_grad(const T* u_q, const T* u_p, int B, const GradReadyFn& on_ready = {});

  // value[b] = f(T(u_b)) for f as chosen, to host (may be null); with du, du += scale * df/du
  // through the network with its parameter gradients left untouched.
  void output_and_input_grad(const T* u, int B, DiscOutput f, T scale, T* du, double* value);

 private:
  // T from the network's output t (n rows): t itself without a cap, else the bounded values in
  // capped_, with dT/dt kept for cap_backward.
  const T* cap_output(const T* t, size_t n);
  // dt *= dT/dt of the last cap_output, turning a gradient w.r.t. T into one w.r.t. t.
  void cap_backward(T* dt, size_t n);

  Backend<T>& be_;
  int max_batch_;
  double cap_ = 0;
  Network<T> net_;
  T* both_;                          // (2 max_batch, input): the two classes' rows side by side
  T *labels_, *ll_, *dlogits_;       // (2 max_batch)
  T* capped_ = nullptr;              // (2 max_batch): the bounded T, with a cap
  std::vector<T> host_t_, host_ll_;  // (2 max_batch), so a call allocates nothing
  std::vector<T> host_raw_, host_slope_, host_dt_;  // (2 max_batch), with a cap
};

extern template class Discriminator<float>;
extern template class Discriminator<double>;

}  // namespace distvae
