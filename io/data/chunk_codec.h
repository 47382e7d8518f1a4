// Decoding HDF5 chunks outside HDF5: a raw chunk as stored on disk (H5Dread_chunk) run back
// through the dataset's filter pipeline (Fletcher32, deflate, shuffle) in our own code, so any
// thread can decompress while serial HDF5 stays on one (the loader's reader).
//
// Only the filters distvae writes are decoded here: deflate (gzip, id 1), shuffle (2) and
// Fletcher32 (3), in any order and combination. A dataset with another filter (LZF, szip, ...)
// is not decodable here; the caller then reads through HDF5 (H5Dread) instead.
#pragma once

#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace distvae {

// One step of a dataset's filter pipeline, in the order applied when writing.
struct ChunkFilter {
  H5Z_filter_t id = 0;
  unsigned flags = 0;
  std::vector<unsigned> cd_values;
  std::string name;
};

// The pipeline of a dataset creation property list.
std::vector<ChunkFilter> read_filter_pipeline(hid_t dcpl, const std::string& where);

// True if decode_chunk handles every filter of the pipeline.
bool can_decode(const std::vector<ChunkFilter>& pipeline);

// Decodes `raw` (raw_size bytes as stored) into out (exactly out_bytes: the full chunk, element
// size elem_size for unshuffling). filter_mask: bit i set means filter i was skipped for this
// chunk when it was written (an optional filter that could not shrink it). `scratch` is reused
// between calls to avoid allocation. Throws std::runtime_error naming `where` on a checksum
// mismatch, corrupt deflate data or a size other than out_bytes.
void decode_chunk(const std::vector<ChunkFilter>& pipeline, const uint8_t* raw, size_t raw_size,
                  uint32_t filter_mask, size_t elem_size, uint8_t* out, size_t out_bytes,
                  std::vector<uint8_t>& scratch, const std::string& where);

// HDF5's Fletcher32 checksum (H5_checksum_fletcher32: 16-bit big-endian words, 360-word blocks).
uint32_t hdf5_fletcher32(const uint8_t* data, size_t n);

}  // namespace distvae
