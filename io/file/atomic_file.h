// A file replaced whole: written beside its place (PATH.tmp), synced, then renamed over PATH, so
// a reader sees the old file or the new one, never a part, and a failure leaves nothing behind.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace distvae {

// Why a replacement failed: what() names the file and the cause; error is the errno (ENOSPC,
// EDQUOT, ...), written the bytes that reached the disk. PATH.tmp is already removed.
struct FileWriteError : std::runtime_error {
  FileWriteError(const std::string& what, int error, size_t written)
      : std::runtime_error(what), error(error), written(written) {}
  int error;
  size_t written;
};

// Replaces PATH with BYTES as above; throws FileWriteError.
void replace_file(const std::string& path, std::string_view bytes);

// For files another library writes (HDF5): the name to write, and the rename into place that
// removes it when the rename fails. PATH.tmp, written whole by the caller.
std::string temporary_path(const std::string& path);
void move_into_place(const std::string& tmp, const std::string& path);

}  // namespace distvae
