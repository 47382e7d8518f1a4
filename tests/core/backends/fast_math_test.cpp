// The vectorizable float exp and log1p (core/backends/fast_math.h) against libm in double over
// their whole stated ranges, sampled densely: relative error within a few float ulps (1.2e-7 each).
#include "core/backends/fast_math.h"

#include <gtest/gtest.h>

#include <cmath>

namespace distvae {
namespace {

TEST(FastMath, ExpNonpositiveMatchesLibmInDouble) {
  double worst = 0;
  for (int i = 0; i <= 2000000; ++i) {
    const float x = float(-87.0 * i / 2000000.0);
    const double exact = std::exp(double(x));
    worst = std::max(worst, std::abs(double(exp_nonpositive(x)) - exact) / exact);
  }
  EXPECT_LT(worst, 4e-7);
  EXPECT_EQ(exp_nonpositive(0.0f), 1.0f);
  // Clamped below -87: positive, tiny, and not larger than e^-87.
  EXPECT_GT(exp_nonpositive(-1000.0f), 0.0f);
  EXPECT_LE(exp_nonpositive(-1000.0f), float(std::exp(-87.0) * (1 + 4e-7)));
}

TEST(FastMath, Log1pUnitMatchesLibmInDouble) {
  double worst = 0;
  for (int i = 1; i <= 2000000; ++i) {
    const float e = float(double(i) / 2000000.0);
    const double exact = std::log1p(double(e));
    worst = std::max(worst, std::abs(double(log1p_unit(e)) - exact) / exact);
  }
  // Tiny arguments, where log(1 + e) computed naively would lose every digit.
  for (float e = 1e-30f; e < 1e-3f; e *= 1.7f)
    worst = std::max(worst, std::abs(double(log1p_unit(e)) - std::log1p(double(e))) / double(e));
  EXPECT_LT(worst, 4e-7);
  EXPECT_EQ(log1p_unit(0.0f), 0.0f);
}

}  // namespace
}  // namespace distvae
