// AIS over ranks: rank r runs chains [r C / W, (r + 1) C / W) of each run; the weights and states
// are gathered by a sum all-reduce of zero-filled vectors.
#include "launch/eval/prior_normalizer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/rng.h"

namespace distvae {

PriorNormalizer normalize_prior(Discriminator<float>& t, int latent, const AisOptions& base,
                                int runs, Communicator& comm, bool print) {
  PriorNormalizer out;
  const int W = comm.size(), r = comm.rank(), C = base.chains;
  const int first = int(int64_t(C) * r / W), last = int(int64_t(C) * (r + 1) / W);
  double lo = 1e300, hi = -1e300, sum = 0;
  for (int run = 0; run < runs; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    AisOptions o = base;
    o.seed = base.seed + uint64_t(run);
    o.chains = last - first;
    o.first_chain = uint64_t(first);
    const AisChains mine = o.chains > 0 ? ais_chains(t, latent, o) : AisChains{};
    std::vector<double> lw(size_t(C), 0.0);
    std::copy(mine.log_w.begin(), mine.log_w.end(), lw.begin() + first);
    comm.allreduce(lw.data(), lw.size(), ReduceOp::sum);
    double acc[2] = {mine.acceptance * o.chains, double(o.chains)};
    comm.allreduce(acc, 2, ReduceOp::sum);
    const LogNormalizer z = log_normalizer(lw);
    out.runs.push_back(z);
    sum += z.log_z, lo = std::min(lo, z.log_z), hi = std::max(hi, z.log_z);
    if (run == 0) {
      std::vector<double> states(size_t(C) * latent, 0.0);
      for (size_t i = 0; i < mine.z.size(); ++i) states[size_t(first) * latent + i] = mine.z[i];
      comm.allreduce(states.data(), states.size(), ReduceOp::sum);
      out.z.assign(states.begin(), states.end());
      out.log_w = lw;
      out.acceptance = acc[0] / acc[1];
    }
    if (print) {
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf(
          "  AIS run %d: log Z = %.4f +- %.4f (standard error), ESS %.1f of %d, "
          "acceptance %.2f, %.0f s\n",
          run + 1, z.log_z, z.std_error, z.ess, C, acc[0] / acc[1], secs);
      std::fflush(stdout);
    }
  }
  out.log_z = sum / runs;
  out.spread = hi - lo;
  return out;
}

std::vector<float> resample_states(const PriorNormalizer& p, int latent, int n, uint64_t seed) {
  const size_t C = p.log_w.size();
  const double m = *std::max_element(p.log_w.begin(), p.log_w.end());
  std::vector<double> cdf(C);
  double s = 0;
  for (size_t i = 0; i < C; ++i) cdf[i] = s += std::exp(p.log_w[i] - m);
  std::vector<double> u(static_cast<size_t>(n));
  uniform_fill(seed, stream_id(rng_purpose::prior_sample, 2), 0, u.size(), u.data());
  std::vector<float> z(size_t(n) * latent);
  for (int i = 0; i < n; ++i) {
    const size_t k = std::min(
        C - 1, size_t(std::upper_bound(cdf.begin(), cdf.end(), u[size_t(i)] * s) - cdf.begin()));
    std::copy_n(p.z.begin() + long(k) * latent, latent, z.begin() + long(i) * latent);
  }
  return z;
}

}  // namespace distvae
