// A tensor view: a non-owning pointer plus a row-major shape of up to 4 dimensions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace distvae {

// Row-major shape, outermost first: (B, F) for features, (B, C, H, W) for images.
struct Shape {
  std::array<int64_t, 4> dims{1, 1, 1, 1};
  int rank = 0;

  Shape() = default;
  Shape(std::initializer_list<int64_t> d) {
    for (int64_t v : d) dims[static_cast<size_t>(rank++)] = v;
  }
  int64_t operator[](int i) const { return dims[static_cast<size_t>(i)]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= dims[static_cast<size_t>(i)];
    return n;
  }
  // Elements per item of the outermost dimension (per image, for a batch).
  int64_t inner() const { return rank == 0 ? 1 : numel() / dims[0]; }
  bool operator==(const Shape& o) const {
    if (rank != o.rank) return false;
    for (int i = 0; i < rank; ++i)
      if (dims[static_cast<size_t>(i)] != o.dims[static_cast<size_t>(i)]) return false;
    return true;
  }
  std::string str() const {
    std::string s = "(";
    for (int i = 0; i < rank; ++i) {
      if (i) s += ", ";
      s += std::to_string(dims[static_cast<size_t>(i)]);
    }
    return s + ")";
  }
};

template <class T>
struct TensorView {
  T* data = nullptr;
  Shape shape;
  int64_t numel() const { return shape.numel(); }
};

}  // namespace distvae
