// HDF5 C API helpers: an owning handle, return-code checking with context, and attributes.
#include "io/hdf5/h5_util.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace distvae {
namespace {

// Collects HDF5's error stack, outermost call first, into one line. The innermost entry usually
// carries the real reason ("errno = 2, error message = 'No such file or directory'").
struct StackText {
  std::string outer;
  std::string inner;
};

herr_t collect_error(unsigned n, const H5E_error2_t* err, void* client) {
  auto* text = static_cast<StackText*>(client);
  try {
    std::string line = std::string(err->func_name ? err->func_name : "?") + ": " +
                       (err->desc ? err->desc : "(no description)");
    // Some descriptions embed a newline (a write failure's ctime() stamp); a message is one line.
    std::replace(line.begin(), line.end(), '\n', ' ');
    if (n == 0) text->outer = line;
    text->inner = line;
  } catch (...) {
    // Out of memory while formatting an error: report what we have.
  }
  return 0;
}

std::string hdf5_reason() {
  StackText text;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &text);
  H5Eclear2(H5E_DEFAULT);
  if (text.outer.empty()) return "no HDF5 error detail";
  if (text.inner == text.outer) return text.outer;
  return text.outer + "; " + text.inner;
}

herr_t close_id(hid_t id) {
  switch (H5Iget_type(id)) {
    case H5I_FILE:
      return H5Fclose(id);
    case H5I_GROUP:
      return H5Gclose(id);
    case H5I_DATATYPE:
      return H5Tclose(id);
    case H5I_DATASPACE:
      return H5Sclose(id);
    case H5I_DATASET:
      return H5Dclose(id);
    case H5I_ATTR:
      return H5Aclose(id);
    case H5I_GENPROP_LST:
      return H5Pclose(id);
    default:
      return H5Idec_ref(id) < 0 ? -1 : 0;
  }
}

std::string attr_where(std::string_view where, const std::string& name) {
  return std::string(where) + ": attribute '" + name + "'";
}

// Opens attribute `name`, throwing a readable error when it does not exist.
H5Handle open_attr(hid_t obj, const std::string& name, std::string_view where) {
  if (!h5_has_attr(obj, name, where))
    throw std::runtime_error(std::string(where) + ": missing attribute '" + name + "'");
  return H5Handle(H5_CHECK(H5Aopen(obj, name.c_str(), H5P_DEFAULT), attr_where(where, name)));
}

// Attributes are write-once in HDF5; replacing one means deleting it first.
void delete_attr_if_present(hid_t obj, const std::string& name, std::string_view where) {
  if (h5_has_attr(obj, name, where))
    H5_CHECK(H5Adelete(obj, name.c_str()), attr_where(where, name));
}

}  // namespace

void h5_fail(std::string_view where, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(where) + ": " + call + " failed: " + hdf5_reason() + " (" +
                           file + ":" + std::to_string(line) + ")");
}

H5QuietErrors::H5QuietErrors() {
  H5Eget_auto2(H5E_DEFAULT, &old_func_, &old_data_);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

H5QuietErrors::~H5QuietErrors() {
  H5Eset_auto2(H5E_DEFAULT, old_func_, old_data_);
}

void H5Handle::reset(hid_t id) {
  if (id_ >= 0) close_id(id_);
  id_ = id;
}

void H5Handle::close(std::string_view where) {
  if (id_ < 0) return;
  hid_t id = id_;
  id_ = H5I_INVALID_HID;
  H5_CHECK(close_id(id), where);
}

std::string h5_library_version() {
  unsigned major = 0, minor = 0, release = 0;
  if (H5get_libversion(&major, &minor, &release) < 0) return "unknown";
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release);
}

bool h5_has_attr(hid_t obj, const std::string& name, std::string_view where) {
  return H5_CHECK(H5Aexists(obj, name.c_str()), attr_where(where, name)) > 0;
}

void h5_write_string_attr(hid_t obj, const std::string& name, const std::string& value,
                          std::string_view where) {
  const std::string w = attr_where(where, name);
  delete_attr_if_present(obj, name, where);
  H5Handle type(H5_CHECK(H5Tcopy(H5T_C_S1), w));
  // A zero-size string type is invalid in HDF5; an empty value is stored as one NUL byte.
  H5_CHECK(H5Tset_size(type.get(), value.empty() ? 1 : value.size()), w);
  H5_CHECK(H5Tset_strpad(type.get(), H5T_STR_NULLTERM), w);
  H5_CHECK(H5Tset_cset(type.get(), H5T_CSET_ASCII), w);
  H5Handle space(H5_CHECK(H5Screate(H5S_SCALAR), w));
  H5Handle attr(H5_CHECK(
      H5Acreate2(obj, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), w));
  const std::string padded = value.empty() ? std::string(1, '\0') : value;
  H5_CHECK(H5Awrite(attr.get(), type.get(), padded.data()), w);
  attr.close(w);
}

void h5_write_int_attr(hid_t obj, const std::string& name, int64_t value, std::string_view where) {
  const std::string w = attr_where(where, name);
  delete_attr_if_present(obj, name, where);
  H5Handle space(H5_CHECK(H5Screate(H5S_SCALAR), w));
  H5Handle attr(H5_CHECK(
      H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), w));
  H5_CHECK(H5Awrite(attr.get(), H5T_NATIVE_INT64, &value), w);
  attr.close(w);
}

std::string h5_read_string_attr(hid_t obj, const std::string& name, std::string_view where) {
  const std::string w = attr_where(where, name);
  H5Handle attr = open_attr(obj, name, where);
  H5Handle type(H5_CHECK(H5Aget_type(attr.get()), w));
  if (H5_CHECK(H5Tget_class(type.get()), w) != H5T_STRING)
    throw std::runtime_error(w + " is not a string");
  H5Handle space(H5_CHECK(H5Aget_space(attr.get()), w));
  if (H5_CHECK(H5Sget_simple_extent_npoints(space.get()), w) != 1)
    throw std::runtime_error(w + " holds more than one value, expected a single string");

  if (H5_CHECK(H5Tis_variable_str(type.get()), w) > 0) {
    H5Handle mem(H5_CHECK(H5Tcopy(H5T_C_S1), w));
    H5_CHECK(H5Tset_size(mem.get(), H5T_VARIABLE), w);
    H5_CHECK(H5Tset_cset(mem.get(), H5Tget_cset(type.get())), w);
    char* text = nullptr;
    H5_CHECK(H5Aread(attr.get(), mem.get(), &text), w);
    std::string value = text ? text : "";
    // Variable-length strings are allocated by HDF5 and must be freed by it.
    H5free_memory(text);
    return value;
  }

  const size_t size = H5Tget_size(type.get());
  if (size == 0) throw std::runtime_error(w + ": HDF5 reports a string of size 0");
  std::vector<char> buf(size + 1, '\0');
  H5_CHECK(H5Aread(attr.get(), type.get(), buf.data()), w);
  return std::string(buf.data());  // stops at the first NUL (null-terminated or null-padded)
}

int64_t h5_read_int_attr(hid_t obj, const std::string& name, std::string_view where) {
  const std::string w = attr_where(where, name);
  H5Handle attr = open_attr(obj, name, where);
  H5Handle type(H5_CHECK(H5Aget_type(attr.get()), w));
  if (H5_CHECK(H5Tget_class(type.get()), w) != H5T_INTEGER)
    throw std::runtime_error(w + " is not an integer");
  H5Handle space(H5_CHECK(H5Aget_space(attr.get()), w));
  if (H5_CHECK(H5Sget_simple_extent_npoints(space.get()), w) != 1)
    throw std::runtime_error(w + " holds more than one value, expected a single integer");
  int64_t value = 0;
  H5_CHECK(H5Aread(attr.get(), H5T_NATIVE_INT64, &value), w);
  return value;
}

}  // namespace distvae
