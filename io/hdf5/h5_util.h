// HDF5 C API helpers: an owning handle, return-code checking with context, and attributes.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace distvae {

// Throws std::runtime_error "<where>: <call> failed: <HDF5's own reason> (<file>:<line>)" when an
// HDF5 call returns a negative value (herr_t, hid_t, htri_t and hssize_t all signal errors that
// way); otherwise passes the value through. `where` names the file and the HDF5 path involved,
// e.g. "data/x.h5: /images", so the user knows what to look at.
#define H5_CHECK(call, where) ::distvae::h5_check((call), (where), #call, __FILE__, __LINE__)

[[noreturn]] void h5_fail(std::string_view where, const char* call, const char* file, int line);

template <typename T>
T h5_check(T ret, std::string_view where, const char* call, const char* file, int line) {
  if (ret < 0) h5_fail(where, call, file, line);
  return ret;
}

// HDF5 prints its whole error stack to stderr on every failure unless told not to. Where we turn
// failures into exceptions that stack is noise, so each public entry point of io/ holds one of
// these for its duration: it silences printing and restores the previous setting on exit (no
// global state is changed for other code).
class H5QuietErrors {
 public:
  H5QuietErrors();
  ~H5QuietErrors();
  H5QuietErrors(const H5QuietErrors&) = delete;
  H5QuietErrors& operator=(const H5QuietErrors&) = delete;

 private:
  H5E_auto2_t old_func_ = nullptr;
  void* old_data_ = nullptr;
};

// Owns one HDF5 identifier (file, group, dataset, dataspace, datatype, attribute or property
// list) and closes it with the matching H5*close. Move-only. The destructor ignores close errors
// (it cannot throw); call close() where a failure matters, e.g. the final flush of a file.
class H5Handle {
 public:
  H5Handle() = default;
  explicit H5Handle(hid_t id) : id_(id) {}
  ~H5Handle() { reset(); }
  H5Handle(H5Handle&& o) noexcept : id_(o.id_) { o.id_ = H5I_INVALID_HID; }
  H5Handle& operator=(H5Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      o.id_ = H5I_INVALID_HID;
    }
    return *this;
  }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes the current id (ignoring errors) and takes ownership of `id`.
  void reset(hid_t id = H5I_INVALID_HID);
  // Closes the id and throws (naming `where`) if HDF5 reports an error, e.g. a failed flush.
  void close(std::string_view where);

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// True if `obj` (a file or object id) carries an attribute called `name`.
// The HDF5 library this program runs with, e.g. "1.10.8".
std::string h5_library_version();

bool h5_has_attr(hid_t obj, const std::string& name, std::string_view where);

// Writes a scalar fixed-length, null-terminated ASCII string attribute (readable by h5py and
// h5dump as a plain string). Replaces an existing attribute of the same name.
void h5_write_string_attr(hid_t obj, const std::string& name, const std::string& value,
                          std::string_view where);
// Writes a scalar 64-bit signed integer attribute. Replaces an existing one of the same name.
void h5_write_int_attr(hid_t obj, const std::string& name, int64_t value, std::string_view where);

// Reads a scalar string attribute, fixed-length or variable-length (as h5py writes them).
// Throws naming `where` and the attribute if it is missing or not a string.
std::string h5_read_string_attr(hid_t obj, const std::string& name, std::string_view where);
// Reads a scalar integer attribute of any integer width, converted to int64.
// Throws naming `where` and the attribute if it is missing or not an integer.
int64_t h5_read_int_attr(hid_t obj, const std::string& name, std::string_view where);

}  // namespace distvae
