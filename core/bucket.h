// A contiguous range [begin, end) of a flat gradient buffer, reduced as one message.
#pragma once

#include <cstddef>

namespace distvae {

struct Bucket {
  size_t begin = 0, end = 0;
};

}  // namespace distvae
