// The logistic discriminator of DESIGN.md section 3: a network T(u) with one output and
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
  Backend<T>& be_;
  int max_batch_;
  Network<T> net_;
  T* both_;                          // (2 max_batch, input): the two classes' rows side by side
  T *labels_, *ll_, *dlogits_;       // (2 max_batch)
  std::vector<T> host_t_, host_ll_;  // (2 max_batch), so a call allocates nothing
};

extern template class Discriminator<float>;
extern template class Discriminator<double>;

}  // namespace distvae
