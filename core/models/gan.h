// The GAN of DESIGN.md section 3: generator x = G(z), z ~ N(0, I), and discriminator
// D(x) = sigmoid(T(x)); discriminator loss -[E_data log D + E_G log(1 - D)], non-saturating
// generator loss -E log D(G(z)), and the optional proximal term lambda * mean_z ||G(z) - G'(z)||^2
// against a snapshot G' of the generator taken before its previous update. Knows nothing of MPI.
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
  double proximal = 0.0;  // lambda
};

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

  // One discriminator step on B real images x (backend memory) and B fakes G(z), z from the
  // streams (gan_disc_noise, keys[b]) at counter k: fills D's parameter gradients.
  DiscStats disc_step(const T* x, int B, uint64_t seed, const uint64_t* keys, int k,
                      const GradReadyFn& on_ready = {});
  // The generator step on z from (gan_gen_noise, keys[b]): fills G's parameter gradients through
  // D with D's own gradients untouched.
  GanGenStats gen_step(int B, uint64_t seed, const uint64_t* keys,
                       const GradReadyFn& on_ready = {});
  // G' <- G; call after gen_step and before the generator's optimizer update.
  void take_snapshot();
  // Generator outputs for z (B, latent) on the host, clamped to [0, 1], to host.
  void generate(const T* z_host, int B, float* out_host);

 private:
  void draw_z(int B, uint64_t seed, uint32_t purpose, const uint64_t* keys, uint64_t counter);

  Backend<T>& be_;
  GanSpec spec_;
  int max_batch_;
  Network<T> generator_, snapshot_;
  Discriminator<T> disc_;
  int D_;
  T *z_, *dfake_, *diff_;
  std::vector<T> host_z_;
  std::vector<double> host_v_;
};

extern template class Gan<float>;
extern template class Gan<double>;

}  // namespace distvae
