// AIS with HMC transitions: each chain's state, momentum and accept draws come from its own
// Philox stream, so the chains are the same however they are split over ranks or chunks.
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
AisChains ais_run(const AisLogFactor<T>& f, int latent, int max_rows, const AisOptions& o,
                  const T* start) {
  const int L = latent, K = o.temperatures;
  const bool reverse = start != nullptr;
  AisChains out;
  out.log_w.assign(size_t(o.chains), 0.0);
  out.z.assign(size_t(o.chains) * L, 0.0f);
  const bool adapt = !o.step_of;
  if (adapt) out.step_sizes.assign(size_t(o.chains) * K, 0.0f);
  double accepted = 0, proposals = 0;
  // Per chain, element counters: [0, L) the initial state; per step s, from s * (L + 2): L momenta,
  // the accept uniform and the step's jitter uniform.
  const uint64_t per_k = uint64_t(L) + 2;
  for (int c0 = 0; c0 < o.chains; c0 += max_rows) {
    const int n = std::min(max_rows, o.chains - c0);
    const size_t nL = size_t(n) * L;
    std::vector<T> z(nL), p(nL), g(nL), z0(nL), g0(nL);
    std::vector<double> fv(static_cast<size_t>(n)), fv0(fv), uni(fv);
    auto stream = [&](int i) { return stream_id(o.purpose, o.first_chain + uint64_t(c0 + i)); };
    auto eval = [&] { f(z.data(), n, c0, fv.data(), g.data()); };
    if (reverse)
      std::copy_n(start + size_t(c0) * L, nL, z.begin());
    else
      for (int i = 0; i < n; ++i)
        normal_fill(o.seed, stream(i), 0, size_t(L), z.data() + size_t(i) * L);
    eval();
    // Adapting, each chain adapts its own step size, so a chain never depends on which others
    // share its chunk or rank.
    std::vector<double> eps(static_cast<size_t>(n), o.step_size), h(eps);  // h: jittered
    for (int s = 1; s <= K; ++s) {
      // Forward, step s goes from beta_{s-1} to beta_s; reversed, from beta_{K-s+1} to beta_{K-s}.
      const double b0 = ais_beta(reverse ? K - s + 1 : s - 1, K);
      const double b = ais_beta(reverse ? K - s : s, K);
      for (int i = 0; i < n; ++i) {
        out.log_w[size_t(c0 + i)] += (b - b0) * fv[size_t(i)];
        if (adapt)
          out.step_sizes[size_t(c0 + i) * K + size_t(s - 1)] = float(eps[size_t(i)]);
        else
          eps[size_t(i)] = o.step_of(int64_t(c0 + i), s);
      }
      // HMC leaving p(z) exp(b f(z)) invariant: U = |z|^2 / 2 - b f(z), dU/dz = z - b df/dz.
      for (int i = 0; i < n; ++i) {
        normal_fill(o.seed, stream(i), uint64_t(s) * per_k + 0, size_t(L),
                    p.data() + size_t(i) * L);
        uniform_fill(o.seed, stream(i), uint64_t(s) * per_k + uint64_t(L), 1, &uni[size_t(i)]);
        // The leapfrog step is the step size times U(0.5, 1.5): with one fixed step and trajectory
        // length, HMC on a near-Gaussian target can resonate (the trajectory returns near its
        // start) and stop mixing, which biased AIS low (by up to 0.1 nats on the linear-Gaussian
        // model).
        double jitter = 0;
        uniform_fill(o.seed, stream(i), uint64_t(s) * per_k + uint64_t(L) + 1, 1, &jitter);
        h[size_t(i)] = eps[size_t(i)] * (0.5 + jitter);
      }
      z0 = z, g0 = g, fv0 = fv;
      std::vector<double> h0(static_cast<size_t>(n), 0.0), h1(h0);
      auto energy = [&](std::vector<double>& h) {
        for (int i = 0; i < n; ++i) {
          double e = -b * fv[size_t(i)];
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
          p[j] -= T(frac * h[j / size_t(L)] * (double(z[j]) - b * double(g[j])));
      };
      kick(0.5);
      for (int l = 0; l < o.leapfrog; ++l) {
        for (size_t j = 0; j < nL; ++j) z[j] += T(h[j / size_t(L)] * double(p[j]));
        eval();
        kick(l + 1 < o.leapfrog ? 1.0 : 0.5);
      }
      energy(h1);
      for (int i = 0; i < n; ++i) {
        const double dh = h0[size_t(i)] - h1[size_t(i)];
        const bool accept = std::isfinite(dh) && std::log(uni[size_t(i)]) < dh;
        // Stationary where the acceptance rate is 0.65: 0.35 a = 0.65 (1 - a).
        if (adapt) eps[size_t(i)] *= std::exp(accept ? 0.05 * 0.35 : -0.05 * 0.65);
        accepted += accept ? 1 : 0;
        if (accept) continue;
        std::copy_n(z0.begin() + long(i) * L, L, z.begin() + long(i) * L);  // rejected
        std::copy_n(g0.begin() + long(i) * L, L, g.begin() + long(i) * L);
        fv[size_t(i)] = fv0[size_t(i)];
      }
      proposals += n;
    }
    for (size_t j = 0; j < nL; ++j) out.z[size_t(c0) * L + j] = float(z[j]);
  }
  out.acceptance = proposals > 0 ? accepted / proposals : 0;
  return out;
}

namespace {

// The step-size schedule of `groups` groups of pilot chains, per_group consecutive chains each:
// group g's step size at step s (at [g K + s - 1]) is the geometric mean of its chains' there.
std::vector<double> pilot_schedule(const AisChains& pilot, int groups, int per_group, int K) {
  std::vector<double> schedule(size_t(groups) * K, 0.0);
  for (size_t c = 0; c < size_t(groups) * per_group; ++c)
    for (int s = 0; s < K; ++s)
      schedule[c / size_t(per_group) * K + size_t(s)] +=
          std::log(double(pilot.step_sizes[c * K + size_t(s)])) / per_group;
  for (double& v : schedule) v = std::exp(v);
  return schedule;
}

// The pilot's options: o's with per_group chains per group, adapting, from their own streams.
AisOptions pilot_options(const AisOptions& o, int per_group) {
  AisOptions p = o;
  p.purpose = rng_purpose::ais_pilot;
  p.first_chain = o.first_chain / uint64_t(o.chains) * uint64_t(per_group);
  p.step_of = nullptr;
  return p;
}

// n values of backend memory, released however the function that holds it ends.
template <class T>
struct Scratch {
  Backend<T>& be;
  T* p;
  Scratch(Backend<T>& b, size_t n) : be(b), p(b.alloc(n)) {}
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { be.release(p); }
};

}  // namespace

template <class T>
AisChains ais_chains(Discriminator<T>& t, int latent, const AisOptions& o) {
  Backend<T>& be = t.backend();
  const int rows = t.net().max_batch();
  const Scratch<T> u(be, size_t(rows) * latent), du(be, size_t(rows) * latent);
  const AisLogFactor<T> f = [&](const T* z, int n, int64_t, double* value, T* grad) {
    const size_t nL = size_t(n) * latent;
    be.to_device(z, u.p, nL);
    be.fill(du.p, nL, T(0));
    t.output_and_input_grad(u.p, n, DiscOutput::logit, T(1), du.p, value);
    be.to_host(du.p, grad, nL);
  };
  AisOptions pilot = pilot_options(o, o.pilot);
  pilot.first_chain = 0, pilot.chains = o.pilot;  // one group: every rank runs the same pilot
  const std::vector<double> schedule =
      pilot_schedule(ais_run(f, latent, rows, pilot), 1, o.pilot, o.temperatures);
  AisOptions main = o;
  main.step_of = [&](int64_t, int s) { return schedule[size_t(s - 1)]; };
  return ais_run(f, latent, rows, main);
}

template <class T>
AisChains ais_marginal(Vae<T>& vae, const T* images, int n, const AisOptions& o, const T* start) {
  Backend<T>& be = vae.backend();
  const int rows = vae.decoder().max_batch(), L = vae.spec().latent, K = o.temperatures;
  const size_t D = size_t(vae.image_size());
  const Scratch<T> x(be, size_t(rows) * D);
  // A run of per_image chains per image: the factor's rows belong to image chain / per_image.
  auto run = [&](const AisOptions& a, int per_image, const T* from) {
    const AisLogFactor<T> f = [&](const T* z, int m, int64_t chain0, double* value, T* grad) {
      for (int i = 0; i < m; ++i)
        be.to_device(images + size_t((chain0 + i) / per_image) * D, x.p + size_t(i) * D, D);
      vae.marginal_log_factor(z, x.p, m, value, grad);
    };
    AisOptions all = a;
    all.chains = n * per_image;
    return ais_run(f, L, rows, all, from);
  };
  const std::vector<double> schedule =
      pilot_schedule(run(pilot_options(o, o.pilot), o.pilot, nullptr), n, o.pilot, K);
  AisOptions main = o;
  main.purpose = rng_purpose::ais_marginal;
  // Reversed, step s anneals at beta_{K-s}, where the pilot's forward step K - s did.
  main.step_of = [&](int64_t chain, int s) {
    const int fwd = start ? std::max(1, K - s) : s;
    return schedule[size_t(chain / o.chains) * K + size_t(fwd - 1)];
  };
  return run(main, o.chains, start);
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

template AisChains ais_run(const AisLogFactor<float>&, int, int, const AisOptions&, const float*);
template AisChains ais_run(const AisLogFactor<double>&, int, int, const AisOptions&, const double*);
template AisChains ais_marginal(Vae<float>&, const float*, int, const AisOptions&, const float*);
template AisChains ais_marginal(Vae<double>&, const double*, int, const AisOptions&, const double*);
template AisChains ais_chains(Discriminator<float>&, int, const AisOptions&);
template AisChains ais_chains(Discriminator<double>&, int, const AisOptions&);

}  // namespace distvae
