// Helpers for the io tests: temporary directories, raw IDX / HDF5 files written independently of
// the code under test, and checking error messages.
#pragma once

#include <gtest/gtest.h>
#include <hdf5.h>
#include <stdlib.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace distvae::testing {

// A fresh directory under the build tree, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    const std::string base = std::string(DISTVAE_BINARY_DIR) + "/test-tmp";
    std::filesystem::create_directories(base);
    std::string tmpl = base + "/io-XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed under " + base);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("test: cannot write " + path);
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

// The bytes of an IDX file: big-endian magic and dims, then data.
inline std::vector<uint8_t> idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims,
                                      const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out;
  auto put32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
  };
  put32(magic);
  for (uint32_t d : dims) put32(d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

inline void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile gz = gzopen(path.c_str(), "wb");
  if (!gz) throw std::runtime_error("test: cannot gzopen " + path);
  const int n = gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size()));
  if (gzclose(gz) != Z_OK || n != static_cast<int>(bytes.size()))
    throw std::runtime_error("test: gzwrite failed for " + path);
}

// Deterministic test pixels.
inline std::vector<uint8_t> pattern_bytes(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return v;
}

inline uint64_t byte_sum(const uint8_t* p, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; ++i) s += p[i];
  return s;
}

// Creates an HDF5 file with one dataset `name` of `type` and `dims`, chunked by `chunk` (empty:
// contiguous; chunked ones are extendible along the first dimension), filled with zeros. For
// building files the writer under test would never make.
inline void write_raw_h5(const std::string& path, const char* name, hid_t type,
                         const std::vector<hsize_t>& dims, const std::vector<hsize_t>& chunk) {
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  std::vector<hsize_t> maxdims = dims;
  if (!chunk.empty()) maxdims[0] = H5S_UNLIMITED;
  hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), maxdims.data());
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (!chunk.empty()) H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
  hid_t dset = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  size_t n = H5Tget_size(type);
  for (hsize_t d : dims) n *= d;
  std::vector<uint8_t> zeros(n, 0);
  if (n) H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data());
  H5Dclose(dset);
  H5Pclose(dcpl);
  H5Sclose(space);
  if (H5Fclose(file) < 0 || file < 0 || dset < 0)
    throw std::runtime_error("test: cannot build HDF5 file " + path);
}

// Expects fn to throw a std::exception whose message contains every one of `parts`.
inline void expect_error(const std::function<void()>& fn,
                         std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception mentioning '" << *parts.begin() << "'";
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg << "\nmissing: " << p;
  }
}

}  // namespace distvae::testing
