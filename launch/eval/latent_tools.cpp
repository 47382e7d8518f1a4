// encode: images -> (mu, logvar) per image; interpolate: z_t = (1 - t) mu_a + t mu_b, decoded.
#include "launch/eval/latent_tools.h"

#include <cstdio>
#include <numeric>
#include <stdexcept>

#include "io/data/image_set.h"
#include "io/hdf5/matrix_file.h"
#include "io/image/image.h"
#include "io/image/png.h"
#include "launch/train/model_setup.h"

namespace distvae {

int encode_images(const std::string& checkpoint, const std::string& data, const std::string& out) {
  LoadedModel m = load_model_checkpoint(checkpoint, 0);
  const std::string pattern = data.empty() ? m.config.data.test : data;
  const ImageSet set = load_image_set(pattern, 0, "--data");
  require_same_images(set.geom, pattern, m, checkpoint);
  const int batch = m.config.eval.iw_batch, L = m.config.model.latent;
  const int64_t N = set.count, D = set.geom.pixels();
  std::vector<float> x(size_t(batch) * D), mu(size_t(N) * L), logvar(size_t(N) * L);
  std::vector<int64_t> idx(static_cast<size_t>(batch));
  std::vector<uint64_t> key(static_cast<size_t>(batch));
  for (int64_t first = 0; first < N; first += batch) {
    const int B = int(std::min<int64_t>(batch, N - first));
    std::iota(idx.begin(), idx.begin() + B, first);
    // Intensities in [0, 1] (no binarization): the encoder's view of the image itself.
    decode_batch(set.pixels.data(), set.geom, idx.data(), key.data(), B, -1, x.data());
    require_vae(m, checkpoint, "distvae encode")
        .encode(x.data(), B, mu.data() + first * L, logvar.data() + first * L);
  }
  write_float_matrices(out, {{"mu", N, L, mu.data()}, {"logvar", N, L, logvar.data()}},
                       set.labels.empty() ? nullptr : &set.labels);
  std::printf("wrote %s: mu and logvar (%lld x %d)%s\n", out.c_str(), (long long)N, L,
              set.labels.empty() ? "" : " and labels");
  return 0;
}

int interpolate(const std::string& checkpoint, const std::string& data, int64_t from, int64_t to,
                int steps, const std::string& out_png) {
  LoadedModel m = load_model_checkpoint(checkpoint, steps);
  const std::string pattern = data.empty() ? m.config.data.test : data;
  const ImageSet set = load_image_set(pattern, std::max(from, to) + 1, "--data");
  require_same_images(set.geom, pattern, m, checkpoint);
  if (from >= set.count || to >= set.count || from < 0 || to < 0)
    throw std::runtime_error(pattern + ": has " + std::to_string(set.count) +
                             " images; --from and --to must be below that");
  const int L = m.config.model.latent;
  const int64_t D = set.geom.pixels();
  const int64_t idx[2] = {from, to};
  const uint64_t key[2] = {0, 0};
  std::vector<float> x(2 * size_t(D)), mu(2 * size_t(L)), z(size_t(steps) * L);
  decode_batch(set.pixels.data(), set.geom, idx, key, 2, -1, x.data());
  require_vae(m, checkpoint, "distvae interpolate").encode(x.data(), 2, mu.data(), nullptr);
  for (int s = 0; s < steps; ++s) {
    const float t = steps > 1 ? float(s) / float(steps - 1) : 0.0f;
    for (int d = 0; d < L; ++d)
      z[size_t(s) * L + d] = (1 - t) * mu[size_t(d)] + t * mu[size_t(L + d)];
  }
  std::vector<float> img(size_t(steps) * D);
  m.model.vae->decode_mean(z.data(), steps, img.data());
  write_png(out_png, make_grid(img.data(), steps, int(set.geom.channels), int(set.geom.height),
                               int(set.geom.width), steps, 2));
  std::printf("wrote %s: %d steps from image %lld to image %lld\n", out_png.c_str(), steps,
              (long long)from, (long long)to);
  return 0;
}

}  // namespace distvae
