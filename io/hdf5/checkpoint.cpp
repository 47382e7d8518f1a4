// HDF5 checkpoint writing (built in memory, then tmp + fsync + rename, the tmp removed on failure)
// and verified reading that tells an unreadable file from a damaged one.
#include "io/hdf5/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "io/file/atomic_file.h"
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

// The whole HDF5 file, built in memory (HDF5's core driver, no backing store): HDF5 never writes
// to the disk, so a full disk is met by replace_file's own write(), not half-way through a
// library call that leaves HDF5 unable to close the file (HDF5 1.10 then crashes at exit).
std::vector<char> file_image(const Checkpoint& ck, const std::string& where) {
  H5Handle fapl(H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), where));
  H5_CHECK(H5Pset_fapl_core(fapl.get(), size_t(1) << 20, false), where);
  H5Handle file(H5_CHECK(H5Fcreate(where.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), where));
  for (const auto& [name, data] : ck.arrays) {
    const std::string w = where + ": " + name;
    const hsize_t n = data.size();
    H5Handle space(H5_CHECK(H5Screate_simple(1, &n, nullptr), w));
    H5Handle ds(H5_CHECK(H5Dcreate2(file.get(), name.c_str(), H5T_IEEE_F32LE, space.get(),
                                    H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                         w));
    if (n)
      H5_CHECK(H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), w);
    h5_write_int_attr(ds.get(), "crc32", crc_of(data), w);
  }
  for (const auto& [k, v] : ck.ints) h5_write_int_attr(file.get(), k, v, where);
  for (const auto& [k, v] : ck.strings) h5_write_string_attr(file.get(), k, v, where);
  H5_CHECK(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), where);
  const ssize_t size = H5_CHECK(H5Fget_file_image(file.get(), nullptr, 0), where);
  std::vector<char> image(static_cast<size_t>(size));
  H5_CHECK(H5Fget_file_image(file.get(), image.data(), image.size()), where);
  file.close(where);
  return image;
}

std::string megabytes(uint64_t bytes) {
  char s[32];
  std::snprintf(s, sizeof s, "%.1f", double(bytes) / 1e6);
  return s;
}

}  // namespace

void write_checkpoint(const std::string& path, const Checkpoint& ck) {
  H5QuietErrors quiet;
  Checkpoint versioned = ck;
  versioned.ints["format_version"] = kCheckpointFormat;
  const std::vector<char> image = file_image(versioned, path);
  try {
    replace_file(path, {image.data(), image.size()});
  } catch (const FileWriteError& e) {
    if (e.error != ENOSPC && e.error != EDQUOT)
      throw std::runtime_error("cannot write checkpoint " + path + ": " + std::strerror(e.error) +
                               " (after " + megabytes(e.written) + " of " +
                               megabytes(image.size()) + " MB; nothing was left there)");
    std::error_code ec;
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    const auto free = std::filesystem::space(dir.empty() ? "." : dir, ec).available;
    throw std::runtime_error("no space left on device while writing checkpoint " + path + " (" +
                             megabytes(image.size()) + " MB needed, " +
                             (ec ? std::string("?") : megabytes(free)) + " MB free)");
  }
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  fsync_path(dir.empty() ? "." : dir.string(), true);
}

namespace {

// The arrays (datasets, each checked against its CRC-32) and the ints and strings (attributes).
Checkpoint read_file(const std::string& path) {
  const hid_t fid = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (fid < 0) throw CheckpointCorrupt(path + ": not a readable HDF5 checkpoint (truncated?)");
  H5Handle file(fid);
  // First, so that a newer layout is named as such rather than met as a missing array.
  if (h5_has_attr(file.get(), "format_version", path)) {
    const int64_t v = h5_read_int_attr(file.get(), "format_version", path);
    if (v > kCheckpointFormat)
      throw CheckpointTooNew(path + ": written by a newer distvae (checkpoint format " +
                             std::to_string(v) + "; this build reads formats 1 to " +
                             std::to_string(kCheckpointFormat) +
                             "): use that version, or a build of it, to read it");
  }
  Checkpoint ck;
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
      throw CheckpointCorrupt(path + ": not a distvae checkpoint (dataset '" + name +
                              "' has no checksum)");
    if (h5_read_int_attr(ds.get(), "crc32", where) != int64_t(crc_of(data)))
      throw CheckpointCorrupt(where + ": checksum mismatch (the checkpoint is corrupt)");
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

}  // namespace

Checkpoint read_checkpoint(const std::string& path) {
  H5QuietErrors quiet;
  // Whether the file can be read at all comes first: a permission or I/O problem is the user's
  // to fix, and must not be mistaken for damage (which a resume would pass over).
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0)
    throw CheckpointUnreadable(path + ": cannot read the checkpoint: " + std::strerror(errno));
  ::close(fd);
  try {
    return read_file(path);
  } catch (const CheckpointCorrupt&) {
    throw;
  } catch (const CheckpointTooNew&) {
    throw;
  } catch (const std::exception& e) {
    throw CheckpointCorrupt(e.what());
  }
}

}  // namespace distvae
