// AIS with HMC transitions: each chain's state, momentum and accept draws come from its own
// Philox stream, so the chains are the same however they are split over ranks.
#include "core/models/ais.h"

#include <algorithm>
#include <cmath>

#include "core/rng.h"

namespace distvae {

double ais_beta(int k, int K) {
  constexpr double kSharp = 4.0;
  auto s = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  const double lo = s(-kSharp), hi = s(kSharp);
  return (s(kSharp * (2.0 * k / K - 1.0)) - lo) / (hi - lo);
}

template <class T>
AisChains ais_chains(Discriminator<T>& t, int latent, const AisOptions& o) {
  Backend<T>& be = t.backend();
  const int L = latent, chunk_max = t.net().max_batch();
  AisChains out;
  out.log_w.assign(size_t(o.chains), 0.0);
  out.z.assign(size_t(o.chains) * L, 0.0f);
  T* u = be.alloc(size_t(chunk_max) * L);
  T* du = be.alloc(size_t(chunk_max) * L);
  double accepted = 0, proposals = 0;
  // Per chain, element counters: [0, L) the initial state; per temperature k, L momenta at
  // (1 + k) * (L + 1) and one uniform after them.
  const uint64_t per_k = uint64_t(L) + 1;
  for (int c0 = 0; c0 < o.chains; c0 += chunk_max) {
    const int n = std::min(chunk_max, o.chains - c0);
    const size_t nL = size_t(n) * L;
    std::vector<T> z(nL), p(nL), g(nL), z0(nL), g0(nL), tmp(nL);
    std::vector<double> tv(static_cast<size_t>(n)), tv0(tv), uni(tv);
    auto stream = [&](int i) {
      return stream_id(rng_purpose::ais, o.first_chain + uint64_t(c0 + i));
    };
    // T(z) into tv and its input gradient into g.
    auto eval = [&] {
      be.to_device(z.data(), u, nL);
      be.fill(du, nL, T(0));
      t.output_and_input_grad(u, n, DiscOutput::logit, T(1), du, tv.data());
      be.to_host(du, g.data(), nL);
    };
    for (int i = 0; i < n; ++i)
      normal_fill(o.seed, stream(i), 0, size_t(L), z.data() + size_t(i) * L);
    eval();
    // Each chain adapts its own step size, so a chain never depends on which others share its
    // chunk or rank.
    std::vector<double> eps(static_cast<size_t>(n), o.step_size);
    for (int k = 1; k <= o.temperatures; ++k) {
      const double b0 = ais_beta(k - 1, o.temperatures), b = ais_beta(k, o.temperatures);
      for (int i = 0; i < n; ++i) out.log_w[size_t(c0 + i)] += (b - b0) * tv[size_t(i)];
      // HMC leaving p(z) exp(b T(z)) invariant: U = |z|^2 / 2 - b T(z), dU/dz = z - b dT/dz.
      for (int i = 0; i < n; ++i) {
        normal_fill(o.seed, stream(i), uint64_t(k) * per_k + 0, size_t(L),
                    p.data() + size_t(i) * L);
        uniform_fill(o.seed, stream(i), uint64_t(k) * per_k + uint64_t(L), 1, &uni[size_t(i)]);
      }
      z0 = z, g0 = g, tv0 = tv;
      std::vector<double> h0(static_cast<size_t>(n), 0.0), h1(h0);
      auto energy = [&](std::vector<double>& h) {
        for (int i = 0; i < n; ++i) {
          double e = -b * tv[size_t(i)];
          for (int d = 0; d < L; ++d) {
            const size_t j = size_t(i) * L + d;
            e += 0.5 * (double(z[j]) * z[j] + double(p[j]) * p[j]);
          }
          h[size_t(i)] = e;
        }
      };
      energy(h0);
      auto kick = [&](double frac) {
        for (size_t j = 0; j < nL; ++j)
          p[j] -= T(frac * eps[j / size_t(L)] * (double(z[j]) - b * double(g[j])));
      };
      kick(0.5);
      for (int l = 0; l < o.leapfrog; ++l) {
        for (size_t j = 0; j < nL; ++j) z[j] += T(eps[j / size_t(L)] * double(p[j]));
        eval();
        kick(l + 1 < o.leapfrog ? 1.0 : 0.5);
      }
      energy(h1);
      for (int i = 0; i < n; ++i) {
        const double dh = h0[size_t(i)] - h1[size_t(i)];
        const bool accept = std::isfinite(dh) && std::log(uni[size_t(i)]) < dh;
        // Stationary where the acceptance rate is 0.65: 0.35 a = 0.65 (1 - a).
        eps[size_t(i)] *= std::exp(accept ? 0.05 * 0.35 : -0.05 * 0.65);
        accepted += accept ? 1 : 0;
        if (accept) continue;
        std::copy_n(z0.begin() + long(i) * L, L, z.begin() + long(i) * L);  // rejected
        std::copy_n(g0.begin() + long(i) * L, L, g.begin() + long(i) * L);
        tv[size_t(i)] = tv0[size_t(i)];
      }
      proposals += n;
    }
    for (size_t j = 0; j < nL; ++j) out.z[size_t(c0) * L + j] = float(z[j]);
  }
  be.release(u);
  be.release(du);
  out.acceptance = proposals > 0 ? accepted / proposals : 0;
  return out;
}

LogNormalizer log_normalizer(const std::vector<double>& log_w) {
  LogNormalizer r;
  r.n = int64_t(log_w.size());
  if (log_w.empty()) return r;
  const double m = *std::max_element(log_w.begin(), log_w.end());
  double s = 0, s2 = 0;
  for (double lw : log_w) {
    const double w = std::exp(lw - m);
    s += w, s2 += w * w;
  }
  const double n = double(log_w.size()), mean = s / n;
  r.log_z = m + std::log(mean);
  r.ess = s * s / s2;
  const double var = n > 1 ? (s2 - n * mean * mean) / (n - 1) : 0.0;
  r.std_error = std::sqrt(std::max(0.0, var) / n) / mean;
  return r;
}

template AisChains ais_chains(Discriminator<float>&, int, const AisOptions&);
template AisChains ais_chains(Discriminator<double>&, int, const AisOptions&);

}  // namespace distvae
