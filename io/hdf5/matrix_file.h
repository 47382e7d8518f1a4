// Writing named 2-D float arrays (rows x cols) and optional int32 labels to one HDF5 file,
// atomically (tmp + rename): the output of distvae encode.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace distvae {

struct FloatMatrix {
  std::string name;
  int64_t rows = 0, cols = 0;
  const float* data = nullptr;  // rows x cols, row-major
};

void write_float_matrices(const std::string& path, const std::vector<FloatMatrix>& arrays,
                          const std::vector<int32_t>* labels = nullptr);

}  // namespace distvae
