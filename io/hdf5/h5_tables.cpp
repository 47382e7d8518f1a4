// Small extra datasets inside an open HDF5 file: text and 2-D float32 / int32 tables.
#include "io/hdf5/h5_tables.h"

#include <stdexcept>

#include "io/hdf5/h5_util.h"

namespace distvae {
namespace {

void write_raw(hid_t file, const std::string& name, hid_t file_type, hid_t mem_type, int rank,
               const hsize_t* dims, const void* data, const std::string& where) {
  const std::string w = where + ": /" + name;
  H5Handle space(H5_CHECK(H5Screate_simple(rank, dims, nullptr), w));
  H5Handle dset(H5_CHECK(
      H5Dcreate2(file, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      w));
  bool empty = false;
  for (int i = 0; i < rank; ++i) empty = empty || dims[i] == 0;
  if (!empty) H5_CHECK(H5Dwrite(dset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), w);
  dset.close(w);
}

H5Handle open_checked(hid_t file, const std::string& name, int rank, hsize_t* dims,
                      const std::string& w) {
  if (H5_CHECK(H5Lexists(file, name.c_str(), H5P_DEFAULT), w) <= 0)
    throw std::runtime_error(w + ": no such dataset");
  H5Handle dset(H5_CHECK(H5Dopen2(file, name.c_str(), H5P_DEFAULT), w));
  H5Handle space(H5_CHECK(H5Dget_space(dset.get()), w));
  const int r = H5_CHECK(H5Sget_simple_extent_ndims(space.get()), w);
  if (r != rank)
    throw std::runtime_error(w + ": rank " + std::to_string(r) + ", expected " +
                             std::to_string(rank));
  H5_CHECK(H5Sget_simple_extent_dims(space.get(), dims, nullptr), w);
  return dset;
}

template <typename T>
std::vector<T> read_table(hid_t file, const std::string& name, hid_t mem_type,
                          const std::string& where) {
  const std::string w = where + ": /" + name;
  hsize_t dims[2];
  H5Handle dset = open_checked(file, name, 2, dims, w);
  std::vector<T> out(static_cast<size_t>(dims[0] * dims[1]));
  if (!out.empty())
    H5_CHECK(H5Dread(dset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), w);
  return out;
}

}  // namespace

void h5_write_text(hid_t file, const std::string& name, const std::string& text,
                   const std::string& where) {
  const hsize_t dims[1] = {text.size()};
  write_raw(file, name, H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, dims, text.data(), where);
}

std::string h5_read_text(hid_t file, const std::string& name, const std::string& where) {
  const std::string w = where + ": /" + name;
  hsize_t dims[1];
  H5Handle dset = open_checked(file, name, 1, dims, w);
  H5Handle type(H5_CHECK(H5Dget_type(dset.get()), w));
  if (H5Tget_class(type.get()) != H5T_INTEGER || H5Tget_size(type.get()) != 1)
    throw std::runtime_error(w + ": expected uint8 bytes of text");
  std::string text(static_cast<size_t>(dims[0]), '\0');
  if (!text.empty())
    H5_CHECK(H5Dread(dset.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data()), w);
  return text;
}

bool h5_exists(hid_t file, const std::string& name, const std::string& where) {
  return H5_CHECK(H5Lexists(file, name.c_str(), H5P_DEFAULT), where) > 0;
}

void h5_write_table(hid_t file, const std::string& name, const float* data, int64_t rows,
                    int64_t cols, const std::string& where) {
  const hsize_t dims[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)};
  write_raw(file, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims, data, where);
}

void h5_write_table(hid_t file, const std::string& name, const int32_t* data, int64_t rows,
                    int64_t cols, const std::string& where) {
  const hsize_t dims[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)};
  write_raw(file, name, H5T_STD_I32LE, H5T_NATIVE_INT32, 2, dims, data, where);
}

void h5_write_column(hid_t file, const std::string& name, const int32_t* data, int64_t n,
                     const std::string& where) {
  const hsize_t dims[1] = {static_cast<hsize_t>(n)};
  write_raw(file, name, H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, data, where);
}

std::vector<int64_t> h5_table_shape(hid_t file, const std::string& name, const std::string& where) {
  hsize_t dims[2];
  open_checked(file, name, 2, dims, where + ": /" + name);
  return {static_cast<int64_t>(dims[0]), static_cast<int64_t>(dims[1])};
}

std::vector<float> h5_read_table_f32(hid_t file, const std::string& name,
                                     const std::string& where) {
  return read_table<float>(file, name, H5T_NATIVE_FLOAT, where);
}

std::vector<int32_t> h5_read_table_i32(hid_t file, const std::string& name,
                                       const std::string& where) {
  return read_table<int32_t>(file, name, H5T_NATIVE_INT32, where);
}

}  // namespace distvae
