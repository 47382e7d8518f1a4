// A network: a layer list built and validated from its spec, one flat ParamStore, an activation
// arena planned for the largest batch, and forward/backward over the whole list.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/layers.h"
#include "core/param_store.h"

namespace distvae {

// A layer list that cannot be built; the message names the network, the layer index and the
// problem.
struct NetworkSpecError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Called during backward with the lowest flat-buffer offset whose gradients are now final, so a
// gradient all-reduce can start on every bucket above it while backward goes on.
using GradReadyFn = std::function<void(size_t lowest_ready_offset)>;

// Resolves the per-sample shapes and parameters of a layer list without allocating anything;
// throws NetworkSpecError. Activations following linear/conv/deconv are fused into them. image:
// the (C, H, W) an autoregressive layer puts before its feature map (a VAE decoder's images).
std::vector<Layer> plan_layers(const std::string& net_name, const Shape& input,
                               const std::vector<LayerSpec>& specs, const Shape& image = Shape{});

template <class T>
class Network {
 public:
  // input: per-sample shape, (F) or (C, H, W). max_batch bounds every later call's B. image:
  // the shape of the images an autoregressive layer sees (none without one).
  Network(Backend<T>& be, std::string name, const Shape& input, const std::vector<LayerSpec>& specs,
          int max_batch, const Shape& image = Shape{});
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;
  ~Network();

  const std::string& name() const { return name_; }
  ParamStore<T>& params() { return params_; }
  const ParamStore<T>& params() const { return params_; }
  const std::vector<Layer>& layers() const { return layers_; }
  const Shape& input_shape() const { return input_; }
  const Shape& output_shape() const { return layers_.empty() ? input_ : layers_.back().out; }
  int max_batch() const { return max_batch_; }
  // Multiply-adds x 2 of one sample's forward pass through linear/conv/deconv layers.
  double forward_flops_per_sample() const;

  // Kaiming-normal weights before relu-family activations, Xavier-normal otherwise; zero biases.
  // Draws come from Philox streams keyed by (seed, network name, layer), so they are the same on
  // every rank and every backend.
  void init(uint64_t seed);

  // Batch norm normalizes by the batch and moves its running averages in training mode, and by
  // the running averages in evaluation mode (the default: sampling, validation, evaluation).
  void set_training(bool on) { training_ = on; }
  bool training() const { return training_; }
  bool has_batchnorm() const;
  // How batch norms make their statistics global in training mode; null: this rank's batch.
  // Every rank must then run the same training forwards and backwards, as the trainer does.
  void set_stats_reduce(StatsReduceFn<T> fn) { reduce_ = std::move(fn); }

  // Whether an autoregressive layer makes the output a PixelCNN's over the image.
  bool autoregressive() const { return with_image_ < layers_.size(); }
  // x: (B, input) must stay valid until backward. Returns y: (B, output), owned by the network.
  // image (B, C, H, W): what an autoregressive network's output is conditioned on; needed there.
  const T* forward(const T* x, int B, const T* image = nullptr);
  // An autoregressive network's layers from its autoregressive layer on, again, with another image
  // and the feature map of the last forward (same B): one pass per pixel of a sampler.
  const T* rerun_with_image(const T* image, int B);
  // dout: (B, output) = dL/dy, overwritten. Returns dL/dx (B, input) when need_dx, else null.
  // Writes or adds the parameter gradients, as grads says, and reports each layer's through
  // on_ready when final. Overwrite for a step's first backward pass: every parameter's gradient
  // is written, so the store needs no zeroing. After an evaluation-mode forward, a network with
  // batch norms gives input gradients only.
  const T* backward(T* dout, int B, ParamGrads grads, bool need_dx,
                    const GradReadyFn& on_ready = nullptr);

 private:
  void allocate_activations(const Shape& input, int max_batch);
  const T* run_layers(size_t first, const T* x, int B, const T* image);
  Backend<T>& be_;
  std::string name_;
  Shape input_;
  int max_batch_;
  std::vector<Layer> layers_;
  ParamStore<T> params_;
  std::vector<const T*> outputs_;  // per layer: its output (arena buffer, or its input for views)
  std::vector<T*> out_buf_;        // per layer: its arena buffer (null for views)
  std::vector<T*> arena_;          // owned buffers
  T* grad_a_ = nullptr;            // ping-pong buffers for dL/dx in backward
  T* grad_b_ = nullptr;
  const T* x_ = nullptr;
  size_t first_param_ = 0;           // index of the first layer with parameters
  size_t with_image_ = 0;            // index of the autoregressive layer (layers_.size(): none)
  int last_batch_ = 0;               // B of the last forward
  std::vector<BatchNormRun<T>> bn_;  // per layer; buffers only for batch norms
  std::vector<MaskRun<T>> masks_;    // per layer; buffers only for masked conv2d
  StatsReduceFn<T> reduce_;
  bool training_ = false;
  bool forward_training_ = false;  // the mode of the last forward, which backward relies on
};

extern template class Network<float>;
extern template class Network<double>;

}  // namespace distvae
