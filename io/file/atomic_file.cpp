#include "io/file/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace distvae {

std::string temporary_path(const std::string& path) {
  return path + ".tmp";
}

void move_into_place(const std::string& tmp, const std::string& path) {
  if (std::rename(tmp.c_str(), path.c_str()) == 0) return;
  const int error = errno;
  ::unlink(tmp.c_str());
  throw FileWriteError(path + ": cannot rename " + tmp + " into place: " + std::strerror(error),
                       error, 0);
}

void replace_file(const std::string& path, std::string_view bytes) {
  const std::string tmp = temporary_path(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int error = errno;
    throw FileWriteError(tmp + ": cannot create: " + std::strerror(error), error, 0);
  }
  size_t done = 0;
  int error = 0;
  while (done < bytes.size() && error == 0) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n > 0)
      done += size_t(n);
    else if (n < 0 && errno != EINTR)
      error = errno;
  }
  if (error == 0 && ::fsync(fd) != 0) error = errno;
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    ::unlink(tmp.c_str());  // a partial file must not keep the disk full
    throw FileWriteError(path + ": cannot write: " + std::strerror(error), error, done);
  }
  move_into_place(tmp, path);
}

}  // namespace distvae
