// Decoding HDF5 chunks outside HDF5: Fletcher32, deflate and shuffle (see io/data/chunk_codec.h).
#include "io/data/chunk_codec.h"

#include <libdeflate.h>

#include <cstring>
#include <memory>
#include <stdexcept>

#include "io/hdf5/h5_util.h"

namespace distvae {
namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error(where + ": " + what);
}

// Inflates src (zlib format, as HDF5's deflate filter writes it) into exactly `want` bytes of dst.
// libdeflate rather than zlib: whole-buffer decoding is about twice as fast, and this runs on the
// loader threads, which share the cores with compute. One decompressor per thread.
void inflate_into(const uint8_t* src, size_t n, uint8_t* dst, size_t want,
                  const std::string& where) {
  struct Free {
    void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
  };
  thread_local std::unique_ptr<libdeflate_decompressor, Free> d(libdeflate_alloc_decompressor());
  if (!d) fail(where, "out of memory allocating a deflate decompressor");
  size_t got = 0;
  switch (libdeflate_zlib_decompress(d.get(), src, n, dst, want, &got)) {
    case LIBDEFLATE_SUCCESS:
      break;
    case LIBDEFLATE_INSUFFICIENT_SPACE:
      fail(where, "a chunk inflates to more than the " + std::to_string(want) + " bytes expected");
    default:  // LIBDEFLATE_BAD_DATA, and SHORT_OUTPUT cannot happen with an actual size
      fail(where, "corrupt deflate data in chunk (checksum or stream invalid)");
  }
  if (got != want)
    fail(where,
         "a chunk inflated to " + std::to_string(got) + " bytes, expected " + std::to_string(want));
}

// HDF5's shuffle stores byte k of every element together; undo it.
void unshuffle(const uint8_t* src, uint8_t* dst, size_t n, size_t elem) {
  const size_t count = n / elem;
  for (size_t b = 0; b < elem; ++b)
    for (size_t i = 0; i < count; ++i) dst[i * elem + b] = src[b * count + i];
  std::memcpy(dst + count * elem, src + count * elem, n - count * elem);  // leftover bytes
}

}  // namespace

std::vector<ChunkFilter> read_filter_pipeline(hid_t dcpl, const std::string& where) {
  std::vector<ChunkFilter> out;
  const int n = H5_CHECK(H5Pget_nfilters(dcpl), where);
  for (int i = 0; i < n; ++i) {
    ChunkFilter f;
    unsigned values[16];
    size_t nvalues = 16;
    char name[128] = {0};
    unsigned config = 0;
    f.id = H5_CHECK(H5Pget_filter2(dcpl, static_cast<unsigned>(i), &f.flags, &nvalues, values,
                                   sizeof name, name, &config),
                    where);
    f.cd_values.assign(values, values + std::min<size_t>(nvalues, 16));
    f.name = name;
    out.push_back(std::move(f));
  }
  return out;
}

bool can_decode(const std::vector<ChunkFilter>& pipeline) {
  for (const ChunkFilter& f : pipeline)
    if (f.id != H5Z_FILTER_DEFLATE && f.id != H5Z_FILTER_SHUFFLE && f.id != H5Z_FILTER_FLETCHER32)
      return false;
  return true;
}

uint32_t hdf5_fletcher32(const uint8_t* data, size_t n) {
  size_t len = n / 2;
  uint32_t sum1 = 0, sum2 = 0;
  while (len) {
    size_t block = len > 360 ? 360 : len;
    len -= block;
    do {
      sum1 += (uint32_t(data[0]) << 8) | uint32_t(data[1]);
      data += 2;
      sum2 += sum1;
    } while (--block);
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  }
  if (n % 2) {
    sum1 += uint32_t(*data) << 8;
    sum2 += sum1;
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  }
  sum1 = (sum1 & 0xffff) + (sum1 >> 16);
  sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  return (sum2 << 16) | sum1;
}

void decode_chunk(const std::vector<ChunkFilter>& pipeline, const uint8_t* raw, size_t raw_size,
                  uint32_t filter_mask, size_t elem_size, uint8_t* out, size_t out_bytes,
                  std::vector<uint8_t>& scratch, const std::string& where) {
  // The bytes being decoded: raw at first, then the output of each undone filter. Filters are
  // undone last to first; the final result must land in `out`.
  const uint8_t* cur = raw;
  size_t cur_size = raw_size;
  bool in_out = false;  // cur points into out (else into raw or scratch)
  auto target = [&](size_t need) -> uint8_t* {
    // Write into whichever buffer cur is not in: out when cur is in scratch / raw, else scratch.
    if (!in_out) return out;
    scratch.resize(need);
    return scratch.data();
  };
  for (size_t k = pipeline.size(); k-- > 0;) {
    if (filter_mask & (1u << k)) continue;  // this filter was skipped for this chunk
    const ChunkFilter& f = pipeline[k];
    if (f.id == H5Z_FILTER_FLETCHER32) {
      if (cur_size < 4) fail(where, "chunk too short for its Fletcher32 checksum");
      const size_t n = cur_size - 4;
      uint32_t stored;
      std::memcpy(&stored, cur + n, 4);  // little-endian on disk, as on x86 / ARM
      if (hdf5_fletcher32(cur, n) != stored)
        fail(where, "Fletcher32 checksum mismatch: the chunk is corrupt on disk");
      cur_size = n;
    } else if (f.id == H5Z_FILTER_DEFLATE) {
      uint8_t* dst = target(out_bytes);
      inflate_into(cur, cur_size, dst, out_bytes, where);
      cur = dst, cur_size = out_bytes, in_out = dst == out;
    } else if (f.id == H5Z_FILTER_SHUFFLE) {
      if (elem_size <= 1) continue;  // shuffling bytes of 1-byte elements changes nothing
      uint8_t* dst = target(cur_size);
      unshuffle(cur, dst, cur_size, elem_size);
      cur = dst, in_out = dst == out;
    } else {
      fail(where, "HDF5 filter '" + f.name + "' (id " + std::to_string(f.id) +
                      ") is not decoded outside HDF5");
    }
  }
  if (cur_size != out_bytes)
    fail(where, "a chunk decoded to " + std::to_string(cur_size) + " bytes, expected " +
                    std::to_string(out_bytes));
  if (cur != out) std::memcpy(out, cur, out_bytes);
}

}  // namespace distvae
