// The tests' shorthand for one layer of a network spec: layer("linear", 256), layer("relu").
#pragma once

#include <cstdint>

#include "core/layers.h"

namespace distvae {

inline LayerSpec layer(const char* type, int64_t out = 0, int64_t in = 0) {
  LayerSpec l;
  l.type = type;
  l.out = out;
  l.in = in;
  return l;
}

}  // namespace distvae
