// The machine's own limit for a step of `distvae bench`: every heavy operation the step runs (the
// GEMMs of linear layers, convolutions and transposed convolutions: forward, input gradient,
// weight gradient) timed alone through the backend at its own shape, and summed. The step's time
// over that sum says how much of the step is spent outside them (docs/performance.md).
#pragma once

#include <string>
#include <vector>

#include "core/backend.h"
#include "core/network.h"

namespace distvae {

// One network's share of a step: `passes` forwards of `rows` rows each (fractional for work
// spread over images, as the evaluation's encoder), each with the input gradients of every layer
// (of every layer but the first without first_dx: the input is data) when backward, and the
// weight gradients when weight_grads.
struct NetUse {
  const Network<float>* net = nullptr;
  int rows = 0;
  double passes = 1;
  bool backward = true;
  bool first_dx = false;
  bool weight_grads = true;
};

// One distinct operation: what and at which shape, e.g. "linear 784->512 weight gradient
// (512 x 128 x 784)", its FLOPs and seconds per call, and how many calls a step makes.
struct HeavyOp {
  std::string what;
  double flops = 0, seconds = 0, calls = 0;
};

struct HeavyReference {
  double flops = 0;           // per step
  double seconds = 0;         // per step, every operation alone
  std::vector<HeavyOp> each;  // the distinct operations timed (none: no reference)
};

// Times each operation of `uses` alone (median of 3 loops of about 20 ms each) and sums them,
// weighted by how often a step runs them. Operations of equal shape are timed once.
HeavyReference heavy_reference(Backend<float>& be, const std::vector<NetUse>& uses);

// The FLOPs of `uses`' heavy operations (2 per multiply-add), what heavy_reference times.
double heavy_flops(const std::vector<NetUse>& uses);

// Seconds per call of the backend's linear_forward on (M, K) x (K, N), no bias or activation:
// median of `loops` loops of about loop_s each. A 1-value read-back ends each loop, so an
// asynchronous backend is timed too.
double matmul_seconds(Backend<float>& be, int M, int K, int N, int loops = 5, double loop_s = 0.05);

}  // namespace distvae
