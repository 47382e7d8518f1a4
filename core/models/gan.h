// The GAN of docs/design.md section 3: generator x = G(z), z ~ N(0, I), and discriminator
// D(x) = sigmoid(T(x)); discriminator loss -[E_data log D + E_G log(1 - D)], non-saturating
// generator loss -E log D(G(z)), and the optional proximal term lambda * mean_z ||G(z) - G'(z)||^2
// against a snapshot G' of the generator taken before its previous update. Optional instance
// noise: D sees x + sigma * eps for real and generated images alike, eps ~ N(0, I), sigma annealed
// from sigma0 to 0 over the run. Knows nothing of MPI.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/models/discriminator.h"

namespace distvae {

struct GanSpec {
  Shape image;  // (C, H, W)
  int latent = 100;
  std::vector<LayerSpec> generator, discriminator;
  double proximal = 0.0;        // lambda
  double instance_noise = 0.0;  // sigma0 of the instance noise (0: off)
};

// The instance noise's standard deviation at progress p in [0, 1] of the run:
// sigma(p) = sigma0 * (1 - p), clamped to [0, sigma0] outside [0, 1].
double instance_noise_sigma(double sigma0, double progress);

struct GanGenStats {
  double loss = 0;      // mean softplus(-T(G(z))) = -mean log D(G(z))
  double proximal = 0;  // lambda * mean ||G(z) - G'(z)||^2
};

template <class T>
class Gan {
 public:
  Gan(Backend<T>& be, const GanSpec& spec, int max_batch);
  Gan(const Gan&) = delete;
  Gan& operator=(const Gan&) = delete;
  ~Gan();

  Backend<T>& backend() { return be_; }
  const GanSpec& spec() const { return spec_; }
  Network<T>& generator() { return generator_; }
  Network<T>& snapshot() { return snapshot_; }  // G' (parameters only; never trained)
  Discriminator<T>& discriminator() { return disc_; }
  void init(uint64_t seed);  // both networks; the snapshot starts equal to the generator
  // Sets the instance noise of the following steps to instance_noise_sigma(sigma0, progress).
  void set_progress(double progress);
  double sigma() const { return sigma_; }

  // One discriminator step on B real images x (backend memory) and B fakes G(z), z from the
  // streams (gan_disc_noise, keys[b]) at counter k: fills D's parameter gradients. With instance
  // noise D sees x + sigma eps and G(z) + sigma eps', eps from (gan_disc_instance_noise, keys[b])
  // at elements [2k D, (2k + 1) D), eps' at [(2k + 1) D, (2k + 2) D), D = C H W.
  DiscStats disc_step(const T* x, int B, uint64_t seed, const uint64_t* keys, int k,
                      const GradReadyFn& on_ready = {});
  // The generator step on z from (gan_gen_noise, keys[b]): fills G's parameter gradients through
  // D with D's own gradients untouched. With instance noise D sees G(z) + sigma eps, eps from
  // (gan_gen_instance_noise, keys[b]); the gradient passes the sum unchanged (d(x + n)/dx = 1).
  GanGenStats gen_step(int B, uint64_t seed, const uint64_t* keys,
                       const GradReadyFn& on_ready = {});
  // G' <- G; call after gen_step and before the generator's optimizer update.
  void take_snapshot();
  // Generator outputs for z (B, latent) on the host, clamped to [0, 1], to host.
  void generate(const T* z_host, int B, float* out_host);

 private:
  void draw_z(int B, uint64_t seed, uint32_t purpose, const uint64_t* keys, uint64_t counter);
  // x + sigma eps into out (eps: elements [use D, (use + 1) D) of stream (purpose, keys[b]) for
  // row b), returned; x itself when sigma is 0.
  const T* add_instance_noise(const T* x, int B, uint64_t seed, uint32_t purpose,
                              const uint64_t* keys, uint64_t use, T* out);

  Backend<T>& be_;
  GanSpec spec_;
  int max_batch_;
  Network<T> generator_, snapshot_;
  Discriminator<T> disc_;
  int D_;
  double sigma_ = 0;  // the instance noise of the current step
  T *z_, *dfake_, *diff_;
  T *eps_ = nullptr, *noisy_real_ = nullptr, *noisy_fake_ = nullptr;  // (max_batch, D), with noise
  std::vector<T> host_z_, host_eps_;
  std::vector<double> host_v_;
};

extern template class Gan<float>;
extern template class Gan<double>;

}  // namespace distvae
