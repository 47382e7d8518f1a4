// The tests' tensor comparison: max |a - b| / max |b| over one tensor (docs/design.md section 8); a
// zero reference tensor compares absolutely.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace distvae {

template <class A, class B>
double rel_err(const A* a, const B* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num = std::max(num, std::abs(double(a[i]) - double(b[i])));
    den = std::max(den, std::abs(double(b[i])));
  }
  return den > 0 ? num / den : num;
}

}  // namespace distvae
