// Reading IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
//
// An IDX file is a 4-byte big-endian magic 0x0000TTRR (TT = element type, 0x08 = uint8; RR =
// rank), then RR big-endian uint32 dimensions, then the elements row-major. MNIST images are
// magic 0x00000803 [N, H, W], labels 0x00000801 [N].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace distvae {

// A uint8 IDX array: dims outermost first, data row-major with exactly prod(dims) bytes.
struct IdxArray {
  std::vector<uint32_t> dims;
  std::vector<uint8_t> data;
};

// Reads a uint8 IDX file of rank `expected_rank` (1..4). A file starting with the gzip magic
// 0x1f 0x8b is decompressed through zlib. Throws std::runtime_error naming the file when it
// cannot be opened, the magic is not uint8 of the expected rank, a dimension is zero, or the
// file does not hold exactly the bytes its header promises (expected and actual counts given).
IdxArray read_idx(const std::string& path, int expected_rank);

// read_idx for images: magic 0x00000803, dims [N, H, W].
inline IdxArray read_idx_images(const std::string& path) {
  return read_idx(path, 3);
}
// read_idx for labels: magic 0x00000801, dims [N].
inline IdxArray read_idx_labels(const std::string& path) {
  return read_idx(path, 1);
}

}  // namespace distvae
