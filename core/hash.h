// FNV-1a, 64 bits: a fast, stable hash for identifying things (a resolved config, a conversion's
// inputs, a primitive's shape), never for security. Chain calls through h to hash several parts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace distvae {

constexpr uint64_t kFnv1aOffset = 1469598103934665603ull;

inline uint64_t fnv1a(const void* data, size_t n, uint64_t h = kFnv1aOffset) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// The length first, so that ("ab", "c") and ("a", "bc") differ when chained.
inline uint64_t fnv1a(std::string_view s, uint64_t h = kFnv1aOffset) {
  const uint64_t len = s.size();
  return fnv1a(s.data(), s.size(), fnv1a(&len, sizeof len, h));
}

}  // namespace distvae
