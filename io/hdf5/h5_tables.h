// Small extra datasets inside an open HDF5 file: text (as uint8 bytes) and 2-D float32 / int32
// tables, written whole and read whole. Shards use them for factors, label names and the list of
// skipped input files (attributes are limited to 64 KiB; these are not).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace distvae {

// /name: uint8 [len(text)] holding the bytes of `text` (h5py: bytes(f[name][:]).decode()).
// An empty text is stored as a dataset of length 0.
void h5_write_text(hid_t file, const std::string& name, const std::string& text,
                   const std::string& where);
// The text of /name. Throws naming `where` and the dataset if it is missing or not uint8 [n].
std::string h5_read_text(hid_t file, const std::string& name, const std::string& where);
// True if the file holds a link called `name`.
bool h5_exists(hid_t file, const std::string& name, const std::string& where);

// /name: float32 or int32 [rows, cols], row-major `data`, contiguous, no filters.
void h5_write_table(hid_t file, const std::string& name, const float* data, int64_t rows,
                    int64_t cols, const std::string& where);
void h5_write_table(hid_t file, const std::string& name, const int32_t* data, int64_t rows,
                    int64_t cols, const std::string& where);
// /name: int32 [n] (a column of labels, say).
void h5_write_column(hid_t file, const std::string& name, const int32_t* data, int64_t n,
                     const std::string& where);
// The shape of a 2-D dataset; throws if it is missing or not 2-D.
std::vector<int64_t> h5_table_shape(hid_t file, const std::string& name, const std::string& where);
// Reads a whole 2-D dataset converted to float32 / int32 (rows * cols values).
std::vector<float> h5_read_table_f32(hid_t file, const std::string& name, const std::string& where);
std::vector<int32_t> h5_read_table_i32(hid_t file, const std::string& name,
                                       const std::string& where);

}  // namespace distvae
