// Reading IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
#include "io/convert/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace distvae {
namespace {

constexpr uint8_t kTypeUint8 = 0x08;
// A sanity bound on what a header may promise: a corrupt header must give an error, not an
// attempt to allocate petabytes.
constexpr uint64_t kMaxDataBytes = uint64_t{1} << 40;
// Bytes read per call; bounded so one gzread's `unsigned` length never overflows.
constexpr size_t kBlock = size_t{16} << 20;

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

std::string describe_rank(int rank) {
  switch (rank) {
    case 1:
      return "uint8 labels [N]";
    case 3:
      return "uint8 images [N, H, W]";
    default:
      return "uint8 rank " + std::to_string(rank);
  }
}

// The bytes of an IDX file, decompressed when the file is gzip. Reads until the end of data;
// throws on I/O or decompression errors. `ended_early` reports a gzip stream cut off mid-way.
class ByteSource {
 public:
  explicit ByteSource(const std::string& path) : path_(path) {
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) throw std::runtime_error(path + ": cannot open IDX file: " + std::strerror(errno));
    unsigned char magic[2] = {0, 0};
    const size_t n = std::fread(magic, 1, 2, file_);
    gzip_ = n == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (!gzip_) {
      std::rewind(file_);
      return;
    }
    std::fclose(file_);
    file_ = nullptr;
    gz_ = gzopen(path.c_str(), "rb");
    if (!gz_)
      throw std::runtime_error(path + ": cannot open gzip IDX file: " + std::strerror(errno));
    gzbuffer(gz_, 1 << 20);  // fewer, larger reads of the compressed file
  }
  ~ByteSource() {
    if (file_) std::fclose(file_);
    if (gz_) gzclose(gz_);
  }
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  bool gzip() const { return gzip_; }
  bool ended_early() const { return ended_early_; }

  // Reads up to n bytes; fewer only at the end of the data.
  size_t read(uint8_t* out, size_t n) {
    size_t total = 0;
    while (total < n) {
      const size_t want = std::min(n - total, kBlock);
      size_t got = 0;
      if (gzip_) {
        const int r = gzread(gz_, out + total, static_cast<unsigned>(want));
        int errnum = Z_OK;
        const char* msg = gzerror(gz_, &errnum);
        if (r < 0 || (errnum != Z_OK && errnum != Z_BUF_ERROR))
          throw std::runtime_error(path_ + ": gzip decompression failed: " +
                                   (errnum == Z_ERRNO ? std::strerror(errno) : msg));
        // zlib reports a stream that stops before its end as Z_BUF_ERROR, with the data so far.
        if (errnum == Z_BUF_ERROR) ended_early_ = true;
        got = static_cast<size_t>(r);
      } else {
        got = std::fread(out + total, 1, want, file_);
        if (got < want && std::ferror(file_))
          throw std::runtime_error(path_ + ": read error: " + std::strerror(errno));
      }
      total += got;
      if (got < want) break;
    }
    return total;
  }

  // Counts the bytes left (to report how much a file holds beyond what its header promises).
  uint64_t count_rest() {
    std::vector<uint8_t> sink(1 << 16);
    uint64_t total = 0;
    for (;;) {
      const size_t n = read(sink.data(), sink.size());
      total += n;
      if (n < sink.size()) return total;
    }
  }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  gzFile gz_ = nullptr;
  bool gzip_ = false;
  bool ended_early_ = false;
};

uint32_t big_endian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

[[noreturn]] void throw_size_mismatch(const std::string& path, const ByteSource& src,
                                      const std::vector<uint32_t>& dims, uint64_t expected,
                                      uint64_t actual) {
  std::string shape;
  for (size_t i = 0; i < dims.size(); ++i) shape += (i ? " x " : "") + std::to_string(dims[i]);
  const uint64_t header = 4 + 4 * dims.size();
  std::string msg = path + ": " + (actual < expected ? "truncated IDX file" : "IDX file too long") +
                    ": the header promises " + std::to_string(expected) + " bytes (" +
                    std::to_string(header) + "-byte header + " + shape +
                    " uint8), the file holds " + std::to_string(actual) + " bytes";
  if (src.gzip()) msg += " after decompression";
  if (src.ended_early()) msg += " (the gzip stream itself ends early: the download was cut off?)";
  throw std::runtime_error(msg);
}

}  // namespace

IdxArray read_idx(const std::string& path, int expected_rank) {
  if (expected_rank < 1 || expected_rank > 4)
    throw std::invalid_argument("read_idx: expected_rank must be 1..4, got " +
                                std::to_string(expected_rank));
  ByteSource src(path);
  const uint32_t expected_magic =
      (uint32_t{kTypeUint8} << 8) | static_cast<uint32_t>(expected_rank);

  uint8_t head[4];
  const size_t got_magic = src.read(head, 4);
  if (got_magic < 4)
    throw std::runtime_error(path + ": file holds " + std::to_string(got_magic) +
                             " bytes, too short for an IDX header (expected magic " +
                             hex32(expected_magic) + ", " + describe_rank(expected_rank) + ")");
  const uint32_t magic = big_endian32(head);
  if (magic != expected_magic) {
    std::string found = hex32(magic);
    if (head[0] == 0 && head[1] == 0 && head[2] == kTypeUint8)
      found += " (" + describe_rank(head[3]) + ")";
    else
      found += " (not a uint8 IDX file)";
    throw std::runtime_error(path + ": IDX magic is " + found + ", expected " +
                             hex32(expected_magic) + " (" + describe_rank(expected_rank) + ")");
  }

  IdxArray out;
  const size_t dim_bytes = 4 * static_cast<size_t>(expected_rank);
  uint8_t raw_dims[16];
  const size_t got_dims = src.read(raw_dims, dim_bytes);
  if (got_dims < dim_bytes)
    throw std::runtime_error(path + ": truncated IDX header: expected " +
                             std::to_string(4 + dim_bytes) + " header bytes, the file holds " +
                             std::to_string(4 + got_dims));
  uint64_t expected_data = 1;
  for (int i = 0; i < expected_rank; ++i) {
    const uint32_t d = big_endian32(raw_dims + 4 * i);
    if (d == 0)
      throw std::runtime_error(path + ": IDX dimension " + std::to_string(i) +
                               " is 0; every dimension must be at least 1");
    out.dims.push_back(d);
    if (expected_data > kMaxDataBytes / d)
      throw std::runtime_error(path + ": IDX header promises more than 2^40 bytes of data; the " +
                               "header is probably corrupt");
    expected_data *= d;
  }
  const uint64_t header_bytes = 4 + dim_bytes;
  const uint64_t expected_total = header_bytes + expected_data;

  // Grow the buffer as bytes arrive rather than trusting the header with one huge allocation.
  uint64_t got = 0;
  while (got < expected_data) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(expected_data - got, kBlock));
    out.data.resize(static_cast<size_t>(got) + want);
    const size_t n = src.read(out.data.data() + got, want);
    got += n;
    if (n < want) {
      out.data.resize(static_cast<size_t>(got));
      throw_size_mismatch(path, src, out.dims, expected_total, header_bytes + got);
    }
  }
  const uint64_t extra = src.count_rest();
  if (extra > 0) throw_size_mismatch(path, src, out.dims, expected_total, expected_total + extra);
  if (src.ended_early())
    throw std::runtime_error(path + ": the gzip stream ends early (truncated .gz file), although " +
                             "it holds the " + std::to_string(expected_total) +
                             " bytes the IDX header promises");
  return out;
}

}  // namespace distvae
