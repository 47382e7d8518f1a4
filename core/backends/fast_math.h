// exp and log1p in float written so the compiler vectorizes the loops that call them: glibc's
// expf/log1pf are scalar calls, and in the Bernoulli log-likelihood (a transcendental per pixel)
// they took a tenth of an MLP VAE's training step. Accurate to a few float ulps on the ranges
// stated; double keeps the library functions.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace distvae {

// e^x for x <= 0. x = k ln2 + r with |r| <= ln2/2; e^r by its Taylor series to r^7 (truncation
// error below 6e-9 relative); 2^k written into the exponent bits. Below -87, e^x is clamped to
// about 1.6e-38 (float's normal range ends at 1.2e-38) instead of going subnormal.
inline float exp_nonpositive(float x) {
  x = x < -87.0f ? -87.0f : x;  // a select, where std::max's branch would stop vectorization
  const int k = int(x * 1.44269504f - 0.5f);  // round(x / ln2): truncation rounds up for x <= 0
  const float kf = float(k);
  const float r = (x - kf * 0.693145752f) - kf * 1.42860677e-6f;  // ln2 split: exact first product
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * std::bit_cast<float>(uint32_t(k + 127) << 23);
}

// log(1 + e) for 0 <= e <= 1, as 2 atanh(s) with s = e / (2 + e) in [0, 1/3] (no cancellation for
// small e); the odd series to s^15 leaves a truncation error below 1e-8.
inline float log1p_unit(float e) {
  const float s = e / (2.0f + e);
  const float s2 = s * s;
  float p = 2.0f / 15;
  p = p * s2 + 2.0f / 13;
  p = p * s2 + 2.0f / 11;
  p = p * s2 + 2.0f / 9;
  p = p * s2 + 2.0f / 7;
  p = p * s2 + 2.0f / 5;
  p = p * s2 + 2.0f / 3;
  p = p * s2 + 2.0f;
  return p * s;
}

}  // namespace distvae
