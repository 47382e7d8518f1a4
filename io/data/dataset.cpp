// Reading a dataset stored as HDF5 shards: open and validate the files, read whole chunks.
#include "io/data/dataset.h"

#include <glob.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "io/hdf5/completion_marker.h"

namespace distvae {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

std::string shape_text(const hsize_t* dims, int rank) {
  std::string s = "[";
  for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

std::string size_text(int64_t h, int64_t w, int64_t c) {
  return std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c) + " (H x W x C)";
}

// "uint8", "int32", "float32", ...: how a user would name the type.
std::string type_text(hid_t type) {
  const H5T_class_t cls = H5Tget_class(type);
  const size_t bits = H5Tget_size(type) * 8;
  switch (cls) {
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
    case H5T_FLOAT:
      return "float" + std::to_string(bits);
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "compound";
    case H5T_ENUM:
      return "enum";
    default:
      return "HDF5 type class " + std::to_string(static_cast<int>(cls));
  }
}

// The names in the root group, to show a user what the file holds instead.
std::string root_members(hid_t file, const std::string& where) {
  H5G_info_t info;
  H5_CHECK(H5Gget_info(file, &info), where);
  std::string names;
  const hsize_t shown = std::min<hsize_t>(info.nlinks, 10);
  for (hsize_t i = 0; i < shown; ++i) {
    char buf[256] = {0};
    H5_CHECK(
        H5Lget_name_by_idx(file, ".", H5_INDEX_NAME, H5_ITER_INC, i, buf, sizeof buf, H5P_DEFAULT),
        where);
    names += (i ? ", " : "") + std::string("'") + buf + "'";
  }
  if (info.nlinks > shown) names += ", ...";
  return names.empty() ? "the file is empty" : "it holds " + names;
}

// Opens `name` in `file` and checks it is a dataset; returns an invalid handle if it is absent.
H5Handle open_dataset(hid_t file, const std::string& path, const char* name,
                      const std::string& where) {
  if (H5_CHECK(H5Lexists(file, name, H5P_DEFAULT), where) <= 0) return H5Handle();
  // A soft or external link whose target is missing: negative (external file absent) or 0.
  if (H5Oexists_by_name(file, name, H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    fail(path, std::string("'") + name + "' is a link to an object that does not exist " +
                   "(a dangling soft or external link)");
  }
  H5Handle obj(H5_CHECK(H5Oopen(file, name, H5P_DEFAULT), where));
  if (H5Iget_type(obj.get()) != H5I_DATASET)
    fail(path, std::string("'") + name + "' is a group or named type, expected a dataset");
  return obj;
}

// Every filter the dataset was written with must be available to decode it.
void check_filters(hid_t dcpl, const std::string& path, const char* name,
                   const std::string& where) {
  const int n = H5_CHECK(H5Pget_nfilters(dcpl), where);
  for (int i = 0; i < n; ++i) {
    unsigned flags = 0, config = 0;
    size_t nvalues = 0;
    char filter_name[128] = {0};
    const H5Z_filter_t id = H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &nvalues,
                                           nullptr, sizeof filter_name, filter_name, &config);
    H5_CHECK(id, where);
    if (H5_CHECK(H5Zfilter_avail(id), where) <= 0)
      fail(path, std::string("dataset '") + name + "' was written with HDF5 filter " +
                     (*filter_name ? "'" + std::string(filter_name) + "' " : "") + "(id " +
                     std::to_string(id) +
                     "), which this HDF5 library cannot decode; rewrite the file with gzip or no " +
                     "compression");
  }
}

// True when HDF5's current error stack holds a Fletcher32 checksum failure: the filter reports
// "data error detected by Fletcher32 checksum" when a chunk's stored bytes no longer match.
bool fletcher32_failed() {
  bool found = false;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* err, void* client) -> herr_t {
        if (err->desc && std::strstr(err->desc, "Fletcher32")) *static_cast<bool*>(client) = true;
        return 0;
      },
      &found);
  return found;
}

// Reads rows [first, first + count) of a rank-`rank` dataset (all of the other dimensions) as
// one hyperslab into `out`. A checksum failure gets its own message: the file is damaged.
void read_rows(hid_t dset, hid_t mem_type, int rank, int64_t first, int64_t count, void* out,
               const std::string& where) {
  hsize_t dims[4];
  H5Handle file_space(H5_CHECK(H5Dget_space(dset), where));
  H5_CHECK(H5Sget_simple_extent_dims(file_space.get(), dims, nullptr), where);
  hsize_t start[4] = {static_cast<hsize_t>(first), 0, 0, 0};
  dims[0] = static_cast<hsize_t>(count);
  H5_CHECK(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, dims, nullptr),
           where);
  H5Handle mem_space(H5_CHECK(H5Screate_simple(rank, dims, nullptr), where));
  const herr_t rc = H5Dread(dset, mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, out);
  if (rc < 0 && fletcher32_failed()) {
    H5Eclear2(H5E_DEFAULT);
    throw std::runtime_error(where + ": checksum mismatch (Fletcher32) reading rows " +
                             std::to_string(first) + ".." + std::to_string(first + count - 1) +
                             ": the file is corrupt on disk (damaged or copied incompletely); " +
                             "re-create it with `distvae convert`");
  }
  H5_CHECK(rc, where);
}

bool is_hdf5(const std::string& path, const std::string& where) {
#if H5_VERSION_GE(1, 12, 0)
  return H5_CHECK(H5Fis_accessible(path.c_str(), H5P_DEFAULT), where) > 0;
#else
  return H5_CHECK(H5Fis_hdf5(path.c_str()), where) > 0;
#endif
}

// A shard written by a conversion (a convert_key attribute) must be listed in its split's
// completion marker: else the conversion was killed or is still running, and the files present
// are only part of the data (a glob would silently train on them).
void check_conversion_finished(hid_t file, const std::string& path) {
  const std::string marker = completion_marker_path(path);
  // Not written by a marking converter, or renamed out of the <prefix>-<split>-NNNNN.h5 scheme.
  if (marker.empty() || !h5_has_attr(file, "convert_key", path)) return;
  const std::string key = h5_read_string_attr(file, "convert_key", path);
  const std::map<std::string, std::string> listed = read_completion_marker(marker);
  const auto it = listed.find(fs::path(path).filename().string());
  if (it != listed.end() && it->second == key) return;
  fail(path, "part of a conversion that did not finish (" +
                 (listed.empty() ? "no completion marker " + marker
                                 : marker + " does not list this file with its key") +
                 "), so other shards of its split may be missing. Rerun the same distvae convert "
                 "command to finish it (it resumes or starts over) or delete the split's files; "
                 "if you copied the shards here, copy " +
                 fs::path(marker).filename().string() + " with them");
}

}  // namespace

std::vector<std::string> expand_glob(const std::string& pattern) {
  glob_t g{};
  // No GLOB_ERR: a missing directory is "no match" (explained below), not an abort.
  const int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
  std::vector<std::string> paths;
  if (rc == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) paths.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  if (rc == GLOB_NOSPACE) throw std::runtime_error("glob '" + pattern + "': out of memory");
  if (rc == GLOB_ABORTED)
    throw std::runtime_error("glob '" + pattern + "': a directory could not be read");
  if (paths.empty()) {
    std::string hint;
    const fs::path dir = fs::path(pattern).parent_path();
    if (!dir.empty() && dir.string().find_first_of("*?[") == std::string::npos &&
        !fs::is_directory(dir))
      hint = " (directory '" + dir.string() + "' does not exist)";
    throw std::runtime_error("no files match '" + pattern + "'" + hint);
  }
  // glob(3) sorts by the locale's collation; bytewise order is the same on every machine.
  std::sort(paths.begin(), paths.end());
  return paths;
}

Hdf5Dataset Hdf5Dataset::open_glob(const std::string& pattern) {
  return Hdf5Dataset(expand_glob(pattern));
}

Hdf5Dataset::Hdf5Dataset(const std::vector<std::string>& paths, const Hdf5OpenOptions& open) {
  if (paths.empty()) throw std::runtime_error("no HDF5 shard files given");
  H5QuietErrors quiet;
  H5Handle fapl(H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), "file access properties"));
  if (open.chunk_cache_bytes >= 0)
    H5_CHECK(H5Pset_cache(fapl.get(), 0, 521, static_cast<size_t>(open.chunk_cache_bytes), 0.75),
             "file access properties");
  std::vector<fs::path> seen;
  for (const std::string& path : paths) {
    // Checks before HDF5 sees the file, so the common mistakes get plain messages.
    std::error_code ec;
    if (!fs::exists(path, ec)) fail(path, "no such file");
    if (!fs::is_regular_file(path, ec)) fail(path, "not a regular file");
    if (::access(path.c_str(), R_OK) != 0)
      fail(path, std::string("cannot read it: ") + std::strerror(errno));
    const fs::path canonical = fs::canonical(path, ec);
    if (std::find(seen.begin(), seen.end(), canonical) != seen.end())
      fail(path, "listed twice; each shard may appear once in a dataset");
    seen.push_back(canonical);
    if (!is_hdf5(path, path)) fail(path, "not an HDF5 file");

    OpenFile f;
    f.images_where = path + ": /images";
    f.labels_where = path + ": /labels";
    f.file.reset(H5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), path));

    f.images = open_dataset(f.file.get(), path, "images", f.images_where);
    if (!f.images.valid())
      fail(path, "no dataset 'images' (expected uint8 [N, H, W, C]); " +
                     root_members(f.file.get(), path));
    const std::string& w = f.images_where;
    H5Handle space(H5_CHECK(H5Dget_space(f.images.get()), w));
    const int rank = H5_CHECK(H5Sget_simple_extent_ndims(space.get()), w);
    hsize_t dims[H5S_MAX_RANK];
    H5_CHECK(H5Sget_simple_extent_dims(space.get(), dims, nullptr), w);
    if (rank != 4)
      fail(path, "dataset 'images' has rank " + std::to_string(rank) + " (shape " +
                     shape_text(dims, rank) + "), expected 4 [N, H, W, C]");
    H5Handle type(H5_CHECK(H5Dget_type(f.images.get()), w));
    if (H5Tget_class(type.get()) != H5T_INTEGER || H5Tget_size(type.get()) != 1 ||
        H5Tget_sign(type.get()) != H5T_SGN_NONE)
      fail(path, "dataset 'images' has type " + type_text(type.get()) +
                     ", expected uint8 (8-bit unsigned integer)");
    if (dims[1] == 0 || dims[2] == 0 || dims[3] == 0)
      fail(path,
           "dataset 'images' has shape " + shape_text(dims, 4) + ": H, W and C must be at least 1");
    if (dims[0] == 0) fail(path, "dataset 'images' holds 0 images, expected N > 0");
    check_conversion_finished(f.file.get(), path);

    H5Handle dcpl(H5_CHECK(H5Dget_create_plist(f.images.get()), w));
    if (H5_CHECK(H5Pget_layout(dcpl.get()), w) != H5D_CHUNKED)
      fail(path, "dataset 'images' is not chunked, expected chunks along N of whole images " +
                     std::string("[k, H, W, C]; rewrite it with `distvae convert`"));
    hsize_t chunk[4];
    H5_CHECK(H5Pget_chunk(dcpl.get(), 4, chunk), w);
    if (chunk[1] != dims[1] || chunk[2] != dims[2] || chunk[3] != dims[3])
      fail(path, "dataset 'images' has chunks " + shape_text(chunk, 4) +
                     ", expected whole images per chunk [k, " + std::to_string(dims[1]) + ", " +
                     std::to_string(dims[2]) + ", " + std::to_string(dims[3]) + "]");
    check_filters(dcpl.get(), path, "images", w);
    f.filters = read_filter_pipeline(dcpl.get(), w);

    ShardFileInfo fi;
    fi.path = path;
    fi.count = static_cast<int64_t>(dims[0]);
    fi.first = info_.count;
    fi.chunk_images = static_cast<int64_t>(chunk[0]);
    fi.num_chunks = (fi.count + fi.chunk_images - 1) / fi.chunk_images;
    const auto h = static_cast<int64_t>(dims[1]), wd = static_cast<int64_t>(dims[2]),
               c = static_cast<int64_t>(dims[3]);
    if (open_.empty()) {
      info_.height = h;
      info_.width = wd;
      info_.channels = c;
    } else if (h != info_.height || wd != info_.width || c != info_.channels) {
      fail(path, "images are " + size_text(h, wd, c) + ", but " + info_.files[0].path +
                     " (the first file) holds " +
                     size_text(info_.height, info_.width, info_.channels) +
                     "; all files of a dataset must share one image size");
    }

    f.labels = open_dataset(f.file.get(), path, "labels", f.labels_where);
    if (f.labels.valid()) {
      const std::string& lw = f.labels_where;
      H5Handle lspace(H5_CHECK(H5Dget_space(f.labels.get()), lw));
      const int lrank = H5_CHECK(H5Sget_simple_extent_ndims(lspace.get()), lw);
      hsize_t ldims[H5S_MAX_RANK];
      H5_CHECK(H5Sget_simple_extent_dims(lspace.get(), ldims, nullptr), lw);
      if (lrank != 1)
        fail(path, "dataset 'labels' has rank " + std::to_string(lrank) + " (shape " +
                       shape_text(ldims, lrank) + "), expected 1 [N]");
      if (ldims[0] != dims[0])
        fail(path, "dataset 'labels' holds " + std::to_string(ldims[0]) +
                       " labels, expected one per image (" + std::to_string(dims[0]) + ")");
      H5Handle ltype(H5_CHECK(H5Dget_type(f.labels.get()), lw));
      if (H5Tget_class(ltype.get()) != H5T_INTEGER || H5Tget_size(ltype.get()) > 4)
        fail(path, "dataset 'labels' has type " + type_text(ltype.get()) +
                       ", expected an integer type of at most 32 bits");
      H5Handle ldcpl(H5_CHECK(H5Dget_create_plist(f.labels.get()), lw));
      check_filters(ldcpl.get(), path, "labels", lw);
      fi.has_labels = true;
    }

    info_.count += fi.count;
    info_.files.push_back(fi);
    open_.push_back(std::move(f));
  }
  info_.has_labels = std::all_of(info_.files.begin(), info_.files.end(),
                                 [](const ShardFileInfo& fi) { return fi.has_labels; });
}

void Hdf5Dataset::check_chunk(size_t file_index, int64_t chunk_index) const {
  if (file_index >= info_.files.size())
    throw std::out_of_range("file index " + std::to_string(file_index) + " out of range: the " +
                            "dataset has " + std::to_string(info_.files.size()) + " files");
  const ShardFileInfo& fi = info_.files[file_index];
  if (chunk_index < 0 || chunk_index >= fi.num_chunks)
    throw std::out_of_range(fi.path + ": chunk index " + std::to_string(chunk_index) +
                            " out of range: the file has " + std::to_string(fi.num_chunks) +
                            " chunks");
}

void Hdf5Dataset::check_range(int64_t first, int64_t count) const {
  if (first < 0 || count < 0 || first > info_.count - count)
    throw std::out_of_range("images [" + std::to_string(first) + ", " +
                            std::to_string(first + count) + ") out of range: the dataset holds " +
                            std::to_string(info_.count) + " images");
}

size_t Hdf5Dataset::file_of(int64_t global_index) const {
  // The last file whose first image is at or before global_index.
  auto it = std::upper_bound(info_.files.begin(), info_.files.end(), global_index,
                             [](int64_t i, const ShardFileInfo& fi) { return i < fi.first; });
  return static_cast<size_t>(it - info_.files.begin()) - 1;
}

int64_t Hdf5Dataset::read_chunk(size_t file_index, int64_t chunk_index, uint8_t* out) {
  check_chunk(file_index, chunk_index);
  const ShardFileInfo& fi = info_.files[file_index];
  const int64_t first = chunk_index * fi.chunk_images;
  const int64_t n = std::min(fi.chunk_images, fi.count - first);
  H5QuietErrors quiet;
  const OpenFile& f = open_[file_index];
  read_rows(f.images.get(), H5T_NATIVE_UINT8, 4, first, n, out, f.images_where);
  return n;
}

int64_t Hdf5Dataset::read_chunk_raw(size_t file_index, int64_t chunk_index,
                                    std::vector<uint8_t>& raw, uint32_t& filter_mask) {
  check_chunk(file_index, chunk_index);
  const ShardFileInfo& fi = info_.files[file_index];
  const int64_t first = chunk_index * fi.chunk_images;
  H5QuietErrors quiet;
  const OpenFile& f = open_[file_index];
  const hsize_t offset[4] = {static_cast<hsize_t>(first), 0, 0, 0};
  hsize_t nbytes = 0;
  H5_CHECK(H5Dget_chunk_storage_size(f.images.get(), offset, &nbytes), f.images_where);
  if (nbytes == 0)
    fail(fi.path, "chunk " + std::to_string(chunk_index) + " of 'images' was never written");
  raw.resize(static_cast<size_t>(nbytes));
  filter_mask = 0;
  H5_CHECK(H5Dread_chunk(f.images.get(), H5P_DEFAULT, offset, &filter_mask, raw.data()),
           f.images_where);
  return std::min(fi.chunk_images, fi.count - first);
}

int64_t Hdf5Dataset::read_chunk_labels(size_t file_index, int64_t chunk_index, int32_t* out) {
  check_chunk(file_index, chunk_index);
  const ShardFileInfo& fi = info_.files[file_index];
  if (!fi.has_labels) fail(fi.path, "no dataset 'labels' in this file");
  const int64_t first = chunk_index * fi.chunk_images;
  const int64_t n = std::min(fi.chunk_images, fi.count - first);
  H5QuietErrors quiet;
  const OpenFile& f = open_[file_index];
  read_rows(f.labels.get(), H5T_NATIVE_INT32, 1, first, n, out, f.labels_where);
  return n;
}

void Hdf5Dataset::read_images(int64_t first, int64_t count, uint8_t* out) {
  check_range(first, count);
  H5QuietErrors quiet;
  const int64_t image_bytes = info_.image_bytes();
  while (count > 0) {
    const size_t fidx = file_of(first);
    const ShardFileInfo& fi = info_.files[fidx];
    const int64_t local = first - fi.first;
    const int64_t n = std::min(count, fi.count - local);
    read_rows(open_[fidx].images.get(), H5T_NATIVE_UINT8, 4, local, n, out,
              open_[fidx].images_where);
    out += n * image_bytes;
    first += n;
    count -= n;
  }
}

void Hdf5Dataset::read_labels(int64_t first, int64_t count, int32_t* out) {
  check_range(first, count);
  H5QuietErrors quiet;
  while (count > 0) {
    const size_t fidx = file_of(first);
    const ShardFileInfo& fi = info_.files[fidx];
    if (!fi.has_labels) fail(fi.path, "no dataset 'labels' in this file");
    const int64_t local = first - fi.first;
    const int64_t n = std::min(count, fi.count - local);
    read_rows(open_[fidx].labels.get(), H5T_NATIVE_INT32, 1, local, n, out,
              open_[fidx].labels_where);
    out += n;
    first += n;
    count -= n;
  }
}

}  // namespace distvae
