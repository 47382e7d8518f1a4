// HDF5 checkpoint writing (atomic: tmp + fsync + rename) and verified reading.
#include "io/hdf5/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "io/hdf5/h5_util.h"

namespace distvae {

namespace {

uint32_t crc_of(const std::vector<float>& v) {
  return uint32_t(
      crc32(0L, reinterpret_cast<const Bytef*>(v.data()), uInt(v.size() * sizeof(float))));
}

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) throw std::runtime_error(path + ": cannot open to fsync");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw std::runtime_error(path + ": fsync failed (disk full or I/O error?)");
}

}  // namespace

void write_checkpoint(const std::string& path, const Checkpoint& ck) {
  H5QuietErrors quiet;
  const std::string tmp = path + ".tmp";
  {
    H5Handle file(H5_CHECK(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), tmp));
    for (const auto& [name, data] : ck.arrays) {
      const std::string where = tmp + ": " + name;
      const hsize_t n = data.size();
      H5Handle space(H5_CHECK(H5Screate_simple(1, &n, nullptr), where));
      H5Handle ds(H5_CHECK(H5Dcreate2(file.get(), name.c_str(), H5T_IEEE_F32LE, space.get(),
                                      H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                           where));
      if (n)
        H5_CHECK(H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()),
                 where);
      h5_write_int_attr(ds.get(), "crc32", crc_of(data), where);
    }
    for (const auto& [k, v] : ck.ints) h5_write_int_attr(file.get(), k, v, tmp);
    for (const auto& [k, v] : ck.strings) h5_write_string_attr(file.get(), k, v, tmp);
    H5_CHECK(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), tmp);
    file.close(tmp);
  }
  fsync_path(tmp, false);
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error(tmp + ": cannot rename to " + path);
  const std::string dir = std::filesystem::path(path).parent_path().string();
  fsync_path(dir.empty() ? "." : dir, true);
}

Checkpoint read_checkpoint(const std::string& path) {
  H5QuietErrors quiet;
  if (!std::filesystem::exists(path)) throw std::runtime_error(path + ": checkpoint not found");
  hid_t fid = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (fid < 0) throw std::runtime_error(path + ": not a readable HDF5 checkpoint (truncated?)");
  H5Handle file(fid);
  Checkpoint ck;
  // Datasets: the arrays.
  H5G_info_t info;
  H5_CHECK(H5Gget_info(file.get(), &info), path);
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    char name[512];
    H5_CHECK(H5Lget_name_by_idx(file.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof(name),
                                H5P_DEFAULT),
             path);
    const std::string where = path + ": " + name;
    H5Handle ds(H5_CHECK(H5Dopen2(file.get(), name, H5P_DEFAULT), where));
    H5Handle space(H5_CHECK(H5Dget_space(ds.get()), where));
    const hssize_t n = H5_CHECK(H5Sget_simple_extent_npoints(space.get()), where);
    std::vector<float> data(static_cast<size_t>(n));
    if (n)
      H5_CHECK(H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()),
               where);
    if (!h5_has_attr(ds.get(), "crc32", where))
      throw std::runtime_error(path + ": not a distvae checkpoint (dataset '" + name +
                               "' has no checksum)");
    if (h5_read_int_attr(ds.get(), "crc32", where) != int64_t(crc_of(data)))
      throw std::runtime_error(where + ": checksum mismatch (the checkpoint is corrupt)");
    ck.arrays[name] = std::move(data);
  }
  // Attributes: ints and strings.
  H5O_info_t oinfo;
  H5_CHECK(H5Oget_info(file.get(), &oinfo), path);
  for (hsize_t i = 0; i < oinfo.num_attrs; ++i) {
    char name[512];
    H5Handle attr(H5_CHECK(
        H5Aopen_by_idx(file.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT),
        path));
    H5_CHECK(H5Aget_name(attr.get(), sizeof(name), name), path);
    H5Handle type(H5_CHECK(H5Aget_type(attr.get()), path));
    if (H5Tget_class(type.get()) == H5T_STRING)
      ck.strings[name] = h5_read_string_attr(file.get(), name, path);
    else
      ck.ints[name] = h5_read_int_attr(file.get(), name, path);
  }
  return ck;
}

}  // namespace distvae
