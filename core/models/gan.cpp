// GAN steps: the discriminator on real images against fakes, the generator through the
// discriminator, and the proximal term against the snapshot.
#include "core/models/gan.h"

#include <algorithm>
#include <stdexcept>

#include "core/rng.h"

namespace distvae {

namespace {

Shape disc_input(const GanSpec& s) {
  if (!s.discriminator.empty() && s.discriminator[0].type == "linear")
    return Shape{s.image.numel()};
  return s.image;
}

}  // namespace

double instance_noise_sigma(double sigma0, double progress) {
  return sigma0 * (1.0 - std::clamp(progress, 0.0, 1.0));
}

template <class T>
Gan<T>::Gan(Backend<T>& be, const GanSpec& spec, int max_batch)
    : be_(be),
      spec_(spec),
      max_batch_(max_batch),
      generator_(be, "generator", Shape{spec.latent}, spec.generator, max_batch),
      snapshot_(be, "generator_snapshot", Shape{spec.latent}, spec.generator, max_batch),
      disc_(be, "discriminator", disc_input(spec), spec.discriminator, max_batch),
      D_(int(spec.image.numel())) {
  if (generator_.output_shape().numel() != D_)
    throw NetworkSpecError("generator: its output " + generator_.output_shape().str() + " has " +
                           std::to_string(generator_.output_shape().numel()) +
                           " values per sample, but the images " + spec.image.str() + " have " +
                           std::to_string(D_));
  z_ = be.alloc(size_t(max_batch) * spec.latent);
  for (T** p : {&dfake_, &diff_}) *p = be.alloc(size_t(max_batch) * D_);
  host_z_.resize(size_t(max_batch) * spec.latent);
  host_v_.resize(size_t(max_batch));
  if (spec.instance_noise > 0) {
    for (T** p : {&eps_, &noisy_real_, &noisy_fake_}) *p = be.alloc(size_t(max_batch) * D_);
    host_eps_.resize(size_t(max_batch) * D_);
  }
  set_progress(0.0);
}

template <class T>
Gan<T>::~Gan() {
  for (T* p : {z_, dfake_, diff_}) be_.release(p);
  for (T* p : {eps_, noisy_real_, noisy_fake_})
    if (p) be_.release(p);
}

template <class T>
void Gan<T>::set_progress(double progress) {
  sigma_ = instance_noise_sigma(spec_.instance_noise, progress);
}

template <class T>
void Gan<T>::init(uint64_t seed) {
  generator_.init(seed);
  disc_.net().init(seed);
  take_snapshot();
}

template <class T>
void Gan<T>::draw_z(int B, uint64_t seed, uint32_t purpose, const uint64_t* keys,
                    uint64_t counter) {
  if (B <= 0 || B > max_batch_)
    throw std::invalid_argument("GAN: batch " + std::to_string(B) + " outside [1, " +
                                std::to_string(max_batch_) + "]");
  const int L = spec_.latent;
  for (int i = 0; i < B; ++i)
    normal_fill(seed, stream_id(purpose, keys[i]), counter * L, size_t(L),
                host_z_.data() + size_t(i) * L);
  be_.to_device(host_z_.data(), z_, size_t(B) * L);
}

template <class T>
const T* Gan<T>::add_instance_noise(const T* x, int B, uint64_t seed, uint32_t purpose,
                                    const uint64_t* keys, uint64_t use, T* out) {
  if (sigma_ == 0) return x;
  const size_t n = size_t(B) * D_;
  for (int i = 0; i < B; ++i)
    normal_fill(seed, stream_id(purpose, keys[i]), use * uint64_t(D_), size_t(D_),
                host_eps_.data() + size_t(i) * D_);
  be_.to_device(host_eps_.data(), eps_, n);
  be_.copy(x, out, n);
  be_.axpy(n, T(sigma_), eps_, out);
  return out;
}

template <class T>
DiscStats Gan<T>::disc_step(const T* x, int B, uint64_t seed, const uint64_t* keys, int k,
                            const GradReadyFn& on_ready) {
  draw_z(B, seed, rng_purpose::gan_disc_noise, keys, uint64_t(k));
  const T* fake = generator_.forward(z_, B);
  const uint32_t purpose = rng_purpose::gan_disc_instance_noise;
  const T* real = add_instance_noise(x, B, seed, purpose, keys, 2 * uint64_t(k), noisy_real_);
  fake = add_instance_noise(fake, B, seed, purpose, keys, 2 * uint64_t(k) + 1, noisy_fake_);
  // class q: the data, class p: the generator's images
  return disc_.loss_and_grad(real, fake, B, on_ready);
}

template <class T>
GanGenStats Gan<T>::gen_step(int B, uint64_t seed, const uint64_t* keys,
                             const GradReadyFn& on_ready) {
  draw_z(B, seed, rng_purpose::gan_gen_noise, keys, 0);
  const size_t n = size_t(B) * D_;
  const T* x = generator_.forward(z_, B);
  be_.fill(dfake_, n, T(0));
  GanGenStats s;
  // dloss/dx = dloss/d(x + sigma eps): the noisy input's gradient is the generator's.
  const T* seen =
      add_instance_noise(x, B, seed, rng_purpose::gan_gen_instance_noise, keys, 0, noisy_fake_);
  disc_.output_and_input_grad(seen, B, DiscOutput::softplus_neg, T(1.0 / B), dfake_,
                              host_v_.data());
  for (int i = 0; i < B; ++i) s.loss += host_v_[size_t(i)] / B;
  if (spec_.proximal > 0) {
    // lambda/B sum_b ||G(z_b) - G'(z_b)||^2, gradient 2 lambda/B (G - G') into dG.
    be_.copy(x, diff_, n);
    be_.axpy(n, T(-1), snapshot_.forward(z_, B), diff_);
    s.proximal = spec_.proximal / B * be_.sum_squares(diff_, n);
    be_.axpy(n, T(2 * spec_.proximal / B), diff_, dfake_);
  }
  generator_.backward(dfake_, B, ParamGrads::overwrite, false, on_ready);
  return s;
}

template <class T>
void Gan<T>::take_snapshot() {
  be_.copy(generator_.params().values(), snapshot_.params().values(),
           generator_.params().values_size());
}

template <class T>
void Gan<T>::generate(const T* z_host, int B, float* out_host) {
  be_.to_device(z_host, z_, size_t(B) * spec_.latent);
  const size_t n = size_t(B) * D_;
  std::vector<T> h(n);
  be_.to_host(generator_.forward(z_, B), h.data(), n);
  for (size_t i = 0; i < n; ++i) out_host[i] = float(std::clamp(double(h[i]), 0.0, 1.0));
}

template class Gan<float>;
template class Gan<double>;

}  // namespace distvae
